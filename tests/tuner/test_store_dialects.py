"""What SQLite forgives and PostgreSQL does not: the store keeps the same values on both.

Each test runs on a SQLite file and on a real PostgreSQL database (``database_url``).
"""

from __future__ import annotations

import pytest

from tuner.store import Store
from tuner.types import ExperimentPhase, Observation, TrialPhase


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    yield s
    s.close()


def _trial(store: Store) -> tuple[str, int]:
    uid = store.create_experiment("default", "exp", {"spec": {}}, None, "local").uid
    return uid, store.add_trial(uid, "exp-a", 0, {"lr": 0.1}, "/tmp/x", "tok").id


def test_a_64_bit_step_is_kept(store: Store) -> None:
    """The push API accepts any 64-bit step; PostgreSQL's INTEGER holds only 32 bits."""
    _, trial = _trial(store)
    steps = [2**31, 2**63 - 1, -(2**63)]
    store.add_observations(
        trial, [Observation("loss", 0.5, s, 1.0) for s in steps], collected=False
    )
    assert [o.step for o in store.observations(trial)] == steps


def test_nul_characters_in_messages_are_stored(store: Store) -> None:
    """A trial's last output line (its failure message) may hold any byte, NUL included."""
    uid, trial = _trial(store)
    store.set_trial_phase(
        trial, TrialPhase.FAILED, "TrialFailed", "exit code 1: \x00binary\x00 out", exit_code=1
    )
    store.set_experiment_phase(uid, ExperimentPhase.FAILED, "ExperimentFailed", "last: \x00x")
    [record] = store.trials(uid)
    assert record.message == "exit code 1: \ufffdbinary\ufffd out"
    experiment = store.get_experiment_by_uid(uid)
    assert experiment.message == "last: \ufffdx"
    assert experiment.conditions[-1].message == "last: \ufffdx"


def test_pushed_names_the_store_cannot_keep_are_refused() -> None:
    from tuner.metrics.push import parse_observations

    ok = parse_observations({"observations": [{"name": "n" * 253, "value": 1}]}, 1.0)
    assert ok[0].name == "n" * 253
    for name in ("n" * 254, "lo\x00ss"):
        with pytest.raises(ValueError, match="at most 253 characters, without NUL"):
            parse_observations({"observations": [{"name": name, "value": 1}]}, 1.0)


def test_a_file_collector_step_beyond_64_bits_is_no_step(tmp_path) -> None:
    from tuner.metrics.file import JsonLinesCollector

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"loss": 1.0, "step": 1e300}\n{"loss": 0.5, "step": 7}\n')
    first, second = JsonLinesCollector(path, ["loss"]).collect(final=True)
    assert first.step != 1e300 and -(2**63) <= (first.step or 0) < 2**63
    assert second.step == 7


def test_a_store_at_revision_0002_upgrades_its_steps_in_place(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from tuner.store import create_store_engine
    from tuner.store.schema import SCHEMA

    engine = create_store_engine(database_url)
    with engine.connect() as conn:
        config = Config()
        config.set_main_option("script_location", str(SCHEMA.script_location))
        config.attributes["connection"] = conn
        config.attributes["schema"] = SCHEMA
        command.upgrade(config, "0002")
        conn.commit()
    engine.dispose()
    store = Store(database_url)  # upgrades to head
    try:
        _, trial = _trial(store)
        store.add_observations(trial, [Observation("loss", 1.0, 2**40, 1.0)], collected=True)
        assert [o.step for o in store.observations(trial)] == [2**40]
    finally:
        store.close()
