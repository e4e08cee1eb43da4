"""Katib text/JSON metrics parsing, incremental tailing, collector choice (real files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tuner.metrics import StdOutParser, check_collector_supported, make_collector
from tuner.metrics.file import JsonLinesCollector
from tuner.metrics.lines import parse_rfc3339
from tuner.metrics.stdout import StdOutCollector, TextFileCollector
from tuner.metrics.tail import LineTailer
from tuner.spec.models import (
    CollectorSpec,
    FileFormat,
    FileSystemKind,
    FileSystemPath,
    FilterSpec,
    MetricsCollectorKind,
    MetricsCollectorSpec,
    SourceSpec,
)


def test_default_regexp_finds_several_metrics_per_line_and_counts_steps() -> None:
    parser = StdOutParser(["loss", "accuracy"])
    obs = parser.parse(
        "epoch=1 loss=0.5 accuracy=0.75\n"
        "loss = 2.5e-1\n"
        "noise=3 other-metric=4\n"
        "loss=\n"  # Katib's regexp matches an empty value: skipped
        "val-loss=9 loss=-.5E1\n",
        now=100.0,
    )
    assert [(o.name, o.value, o.step) for o in obs] == [
        ("loss", 0.5, 0),
        ("accuracy", 0.75, 0),
        ("loss", 0.25, 1),
        ("loss", -5.0, 2),
    ]
    assert {o.timestamp for o in obs} == {100.0}


def test_leading_rfc3339_timestamp_is_honoured() -> None:
    parser = StdOutParser(["loss"])
    (a,) = parser.parse_line("2024-05-01T12:00:00.5Z loss=0.3", now=1.0)
    (b,) = parser.parse_line("2024-05-01T14:00:00+02:00 loss=0.2", now=1.0)
    (c,) = parser.parse_line("2024-05-01 loss=0.1", now=7.0)  # not RFC 3339: time of reading
    expected = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC).timestamp()
    assert a.timestamp == expected and a.value == 0.3
    assert b.timestamp == expected - 0.5
    assert c.timestamp == 7.0
    assert parse_rfc3339("2024-05-01T12:00:00") is None  # no offset


def test_custom_metrics_format() -> None:
    parser = StdOutParser(["loss", "acc"], [r"\{metricName: ([\w|-]+), metricValue: ([\d.]+)\}"])
    obs = parser.parse(
        "{metricName: loss, metricValue: 0.4}\nloss=0.1\n{metricName: acc, metricValue: 1}\n"
    )
    assert [(o.name, o.value) for o in obs] == [("loss", 0.4), ("acc", 1.0)]
    with pytest.raises(ValueError, match="two groups"):
        StdOutParser(["loss"], [r"loss=(\d+)"])


def test_tailer_holds_partial_line_until_newline_or_final(tmp_path: Path) -> None:
    path = tmp_path / "log"
    tailer = LineTailer(path)
    assert tailer.read() == []  # missing file reads as empty
    path.write_bytes(b"a=1\nb=")
    assert tailer.read() == ["a=1"]
    with path.open("ab") as f:
        f.write(b"2")
    assert tailer.read() == []
    with path.open("ab") as f:
        f.write(b"\r\nc=3")
    assert tailer.read() == ["b=2"]
    assert tailer.read(final=True) == ["c=3"]
    assert tailer.read(final=True) == []


def test_tailer_cuts_long_lines_the_same_way_whenever_read(tmp_path: Path) -> None:
    path = tmp_path / "log"
    data = b"x" * 25 + b"\n" + b"y" * 7 + b"\nz"
    path.write_bytes(data)
    whole = LineTailer(path, max_line=10).read(final=True)
    path.write_bytes(b"")
    piecewise = LineTailer(path, max_line=10)
    got: list[str] = []
    for i in range(len(data)):
        with path.open("ab") as f:
            f.write(data[i : i + 1])
        got += piecewise.read()
    got += piecewise.read(final=True)
    assert [line for line in whole if line] == [line for line in got if line]
    assert whole[:3] == ["x" * 10, "x" * 10, "x" * 5]


def test_tailer_reads_a_log_larger_than_its_chunk_in_one_call(tmp_path: Path) -> None:
    from tuner.metrics.tail import _CHUNK

    path = tmp_path / "trial.log"
    lines = [f"step={i} loss={i / 7:.6f}" for i in range(_CHUNK // 10)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2 * _CHUNK
    tailer = LineTailer(path)
    assert tailer.read() == lines
    with path.open("a") as f:
        f.write("last=1\n")
    assert tailer.read() == ["last=1"]


def test_stdout_collector_streams_and_skips(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    log.write_text("loss=3\nloss=2\n")
    first = StdOutCollector(log, ["loss"])
    assert [o.value for o in first.collect()] == [3.0, 2.0]
    with log.open("a") as f:
        f.write("loss=1")
    assert first.collect() == []
    assert [(o.value, o.step) for o in first.collect(final=True)] == [(1.0, 2)]
    again = StdOutCollector(log, ["loss"])
    again.skip(2)
    assert [(o.value, o.step) for o in again.collect(final=True)] == [(1.0, 2)]


def test_json_lines_collector(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"epoch": 0, "loss": 0.9, "accuracy": "0.5", "timestamp": 1700000000.5},
        {"step": 7, "loss": 0.8, "timestamp": "2024-05-01T12:00:00Z"},
        "not json",
        [1, 2],
        {"loss": "nan", "other": 3},
        {"loss": 0.7},
    ]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    obs = JsonLinesCollector(path, ["loss", "accuracy"]).collect(final=True)
    assert [(o.name, o.value, o.step) for o in obs] == [
        ("loss", 0.9, 0),
        ("accuracy", 0.5, 0),
        ("loss", 0.8, 7),
        ("loss", 0.7, 2),
    ]
    assert obs[0].timestamp == 1700000000.5
    assert obs[2].timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()


def _spec(kind: MetricsCollectorKind, **source: object) -> MetricsCollectorSpec:
    return MetricsCollectorSpec(
        collector=CollectorSpec(kind=kind), source=SourceSpec(**source) if source else None
    )


def test_factory_resolves_file_paths_and_formats(tmp_path: Path) -> None:
    trial_dir = tmp_path / "t1"
    text = _spec(
        MetricsCollectorKind.FILE,
        file_system_path=FileSystemPath(path="out/metrics.log"),
        filter=FilterSpec(metrics_format=[r"(\w+):\s*([\d.]+)"]),
    )
    collector = make_collector(
        text, log_path=trial_dir / "trial.log", trial_dir=trial_dir, metric_names=["loss"]
    )
    assert isinstance(collector, TextFileCollector)
    assert collector.path == trial_dir / "out" / "metrics.log"
    collector.path.parent.mkdir(parents=True)
    collector.path.write_text("loss: 0.5\nloss=0.1\n")
    assert [o.value for o in collector.collect()] == [0.5]

    absolute = _spec(
        MetricsCollectorKind.FILE,
        file_system_path=FileSystemPath(path="${OUT}/m.json", format=FileFormat.JSON),
    )
    json_collector = make_collector(
        absolute,
        log_path=trial_dir / "trial.log",
        trial_dir=trial_dir,
        metric_names=["loss"],
        env={"OUT": str(tmp_path)},
    )
    assert isinstance(json_collector, JsonLinesCollector)
    assert json_collector.path == tmp_path / "m.json"


def test_check_collector_supported() -> None:
    assert check_collector_supported(MetricsCollectorSpec()) is None
    for kind in (MetricsCollectorKind.PUSH, MetricsCollectorKind.NONE):
        assert check_collector_supported(_spec(kind)) is None
    for kind in (
        MetricsCollectorKind.TENSORFLOW_EVENT,
        MetricsCollectorKind.PROMETHEUS_METRIC,
        MetricsCollectorKind.CUSTOM,
    ):
        message = check_collector_supported(_spec(kind))
        assert message is not None and kind.value in message
    assert "fileSystemPath" in (check_collector_supported(_spec(MetricsCollectorKind.FILE)) or "")
    directory = _spec(
        MetricsCollectorKind.FILE,
        file_system_path=FileSystemPath(path="/x", kind=FileSystemKind.DIRECTORY),
    )
    assert "Directory" in (check_collector_supported(directory) or "")
    bad_regexp = _spec(MetricsCollectorKind.STDOUT, filter=FilterSpec(metrics_format=["(unclosed"]))
    assert "invalid metricsFormat" in (check_collector_supported(bad_regexp) or "")
