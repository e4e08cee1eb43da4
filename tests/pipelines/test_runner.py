"""Running pipelines: bad input, parallelism and CPU bounds, importer, outputs, store."""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import os
from pathlib import Path

import pytest
import yaml
from kfp import dsl
from kfp.dsl import Dataset, Output

from pipelines.spec import PipelineError, SpecProblems, compile_pipeline, load_pipeline
from tests.pipelines.conftest import log_of, states


@dsl.component
def nap(seconds: float, tag: str) -> str:
    import time

    time.sleep(seconds)
    return tag


@dsl.pipeline
def four_naps(seconds: float = 0.4):
    for tag in "abcd":
        nap(seconds=seconds, tag=tag).set_caching_options(False)


def _max_overlap(tasks) -> int:
    events = sorted(
        [(t.started_at, 1) for t in tasks] + [(t.finished_at, -1) for t in tasks],
        key=lambda e: (e[0], e[1]),
    )
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_independent_tasks_run_in_parallel_up_to_parallelism(run):
    result = run(four_naps, parallelism=2)
    naps = [t for t in result.tasks if t.name.startswith("nap")]
    assert len(naps) == 4
    assert _max_overlap(naps) == 2
    result = run(four_naps, parallelism=1)
    assert _max_overlap([t for t in result.tasks if t.name.startswith("nap")]) == 1


@dsl.pipeline
def two_big_naps(cpus: str = "1"):
    for tag in "ab":
        nap(seconds=0.3, tag=tag).set_cpu_limit(str(os.cpu_count())).set_caching_options(False)


def test_cpu_limits_bound_what_runs_at_once(run):
    result = run(two_big_naps, parallelism=4)
    naps = [t for t in result.tasks if t.name.startswith("nap")]
    assert _max_overlap(naps) == 1
    assert naps[0].details["resources"]["resourceCpuLimit"] == str(os.cpu_count())


def test_missing_argument_wrong_type_unknown_argument(run):
    with pytest.raises(PipelineError, match="missing argument seconds"):
        run(_needs_seconds)
    with pytest.raises(PipelineError, match="argument seconds: expected a number, got str"):
        run(_needs_seconds, {"seconds": "soon"})
    with pytest.raises(PipelineError, match=r"argument seconds: 'soon' is not a number"):
        run(_needs_seconds, {"seconds": "soon"}, from_cli=True)
    with pytest.raises(PipelineError, match=r"unknown pipeline argument.*nope"):
        run(_needs_seconds, {"seconds": 1, "nope": 2})


def test_a_whole_float_is_an_integer_argument() -> None:
    # KFP's API carries every number as a double: {"n": 3.0} for an int input was refused.
    from pipelines.spec import pipeline_arguments

    spec = {
        "root": {"inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}}}
    }
    assert pipeline_arguments(spec, {"n": 3.0}) == {"n": 3}
    assert type(pipeline_arguments(spec, {"n": 3.0})["n"]) is int
    with pytest.raises(PipelineError, match=r"argument n: expected an integer, got float 3\.5"):
        pipeline_arguments(spec, {"n": 3.5})


@dsl.pipeline
def _needs_seconds(seconds: float):
    nap(seconds=seconds, tag="x")


def test_pipeline_file_that_does_not_compile(run, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from kfp import dsl\n\n@dsl.component\ndef f(x: int) -> int:\n    return x\n\n"
        "@dsl.pipeline\ndef p():\n    f(x='not an int')\n"
    )
    with pytest.raises(PipelineError, match=r"broken\.py does not load"):
        run(broken)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("pipelineInfo: [unclosed\n")
    with pytest.raises(PipelineError, match=r"bad\.yaml is not valid YAML"):
        run(bad_yaml)


@pytest.mark.parametrize("name", ["../../etc", "..", ".", "a/b", "a\\b", "a\0b", "x" * 129, " ", 5])
def test_a_pipeline_name_is_a_name_not_a_path(run, tmp_path, hyperflow_home, name):
    """``pipelineInfo.name`` names the MLflow experiment's artifact folder and a local run's
    folder (``<name>-<hex>``): ``../../etc`` wrote outside ``$HYPERFLOW_HOME``."""
    spec = compile_pipeline(four_naps)
    spec["pipelineInfo"]["name"] = name
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecProblems, match=r"named\.yaml is not a valid PipelineSpec") as caught:
        run(path, {"seconds": 0.0})
    [(field, _)] = caught.value.problems
    assert field == "pipelineInfo.name"
    assert not (hyperflow_home.parent / "etc").exists()
    assert [p.name for p in hyperflow_home.rglob("*-*") if p.parent.name == "default"] == []


def test_a_display_name_is_a_pipeline_name(run, tmp_path):
    spec = compile_pipeline(four_naps)
    spec["pipelineInfo"]["name"] = "Four naps (v2), by Zoë"
    result = run(spec, {"seconds": 0.0})
    assert result.state == "SUCCEEDED" and result.name.startswith("Four naps (v2), by Zoë-")


def _broken(change):
    spec = compile_pipeline(four_naps)
    change(spec)
    return spec


def _container(spec):
    return spec["deploymentSpec"]["executors"]["exec-nap"]["container"]


def _seconds(spec):
    return spec["root"]["inputDefinitions"]["parameters"]["seconds"]


_NAP = "deploymentSpec.executors.exec-nap"
BROKEN = [
    (lambda s: s.update(pipelineInfo=None), "pipelineInfo", "must be an object"),
    (lambda s: s.update(pipelineInfo=""), "pipelineInfo", "must be an object"),
    (lambda s: s.update(pipelineInfo=[]), "pipelineInfo", "must be an object"),
    (lambda s: s.update(pipelineInfo={}), "pipelineInfo.name", "must be a non-empty string"),
    (lambda s: s["pipelineInfo"].update(name=None), "pipelineInfo.name", "non-empty string"),
    (lambda s: s.update(root=None), "root", "must be an object"),
    (lambda s: s.update(root=""), "root", "must be an object"),
    (lambda s: s.update(root=[]), "root", "must be an object"),
    (lambda s: s.update(root="x" * 300), "root", "must be an object"),
    (lambda s: s.update(root={}), "root.dag", "must be an object"),
    (lambda s: s.update(deploymentSpec=None), "deploymentSpec", "must be an object"),
    (lambda s: s["deploymentSpec"].update(executors=[]), "deploymentSpec.executors", "object"),
    (lambda s: s.update(components=None), "components", "must be an object"),
    (lambda s: _container(s).update(command=True), f"{_NAP}.container.command", "list of str"),
    (lambda s: _container(s).update(args=[1]), f"{_NAP}.container.args", "list of strings"),
    (lambda s: _container(s).update(image=None), f"{_NAP}.container.image", "must be a string"),
    (lambda s: _container(s).update(env=[{"value": "1"}]), f"{_NAP}.container.env", "name"),
    (lambda s: s["deploymentSpec"]["executors"].update({"exec-nap": {}}), _NAP, "container"),
    (
        lambda s: s["components"]["comp-nap"].update(executorLabel=""),
        "components.comp-nap.executorLabel",
        "must name an executor of deploymentSpec.executors, got ''",
    ),
    (
        lambda s: s["root"]["dag"]["tasks"]["nap"]["componentRef"].update(name="comp-nope"),
        "root.dag.tasks.nap.componentRef.name",
        "must name a component, got 'comp-nope'",
    ),
    (
        lambda s: s["root"]["dag"]["tasks"]["nap"].update(dependentTasks=["nope"]),
        "root.dag.tasks.nap.dependentTasks",
        "must be a list of tasks of its dag",
    ),
    (
        lambda s: _seconds(s).update(defaultValue="xxx"),
        "root.inputDefinitions.parameters.seconds.defaultValue",
        "must be a number (parameterType NUMBER_DOUBLE), got 'xxx'",
    ),
    (
        lambda s: _seconds(s).update(parameterType=True),
        "root.inputDefinitions.parameters.seconds.parameterType",
        "must be one of",
    ),
    (
        lambda s: _seconds(s).update(parameterType=-1),
        "root.inputDefinitions.parameters.seconds.parameterType",
        "got -1",
    ),
    (
        lambda s: _seconds(s).update(parameterType=1.5),
        "root.inputDefinitions.parameters.seconds.parameterType",
        "got 1.5",
    ),
    (
        lambda s: s["root"]["dag"]["tasks"]["nap"].update(cachingOptions=None),
        "root.dag.tasks.nap.cachingOptions",
        "must not be null",
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), BROKEN)
def test_a_broken_spec_is_refused_naming_the_field(change, field, message):
    """Refused when loaded (``pipeline run``, ``validate``, the API), not failed at run time
    with a Python error (AttributeError, TypeError) or a run message."""
    with pytest.raises(SpecProblems) as caught:
        load_pipeline(_broken(change))
    problems = dict(caught.value.problems)
    assert field in problems, caught.value.problems
    assert message in problems[field]
    assert f"{field}: {problems[field]}" in str(caught.value)


def test_a_spec_nested_too_deeply_is_bad_input_not_a_recursion_error():
    deep: list = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]

    def change(spec):
        _seconds(spec).update(parameterType="LIST", defaultValue=deep)

    with pytest.raises(PipelineError, match="is not a valid PipelineSpec: nested too deeply"):
        load_pipeline(_broken(change))


def test_what_kfp_writes_is_a_valid_spec():
    """Values the checks must take: an integer default written as a double (KFP's API
    carries numbers so), no default for an optional input, any JSON in a Value field."""

    def change(spec):
        spec["root"]["inputDefinitions"]["parameters"]["n"] = {
            "parameterType": "NUMBER_INTEGER",
            "defaultValue": 3.0,
        }
        spec["root"]["inputDefinitions"]["parameters"]["maybe"] = {
            "parameterType": "STRING",
            "isOptional": True,
        }
        spec["root"]["dag"]["tasks"]["nap"]["inputs"]["parameters"]["tag"] = {
            "runtimeValue": {"constant": None}
        }

    loaded, _ = load_pipeline(_broken(change))
    assert loaded["root"]["inputDefinitions"]["parameters"]["n"]["defaultValue"] == 3.0


def test_a_cycle_is_an_error_naming_the_tasks(run, tmp_path):
    spec = compile_pipeline(four_naps)
    tasks = spec["root"]["dag"]["tasks"]
    tasks["nap"]["dependentTasks"] = ["nap-2"]
    tasks["nap-2"]["dependentTasks"] = ["nap"]
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run(path)
    assert result.state == "FAILED"
    assert "cycle: nap -> nap-2 -> nap" in result.run.message


@dsl.component
def no_output(out: Output[Dataset]):
    print("forgot to write", out.path)


@dsl.component
def downstream(data: dsl.Input[Dataset]) -> str:
    return data.path


@dsl.pipeline
def missing_output():
    downstream(data=no_output().output)


def test_missing_output_artifact_fails_the_task_and_skips_downstream(run):
    result = run(missing_output)
    assert result.state == "FAILED"
    task = result.task("no-output")
    assert task.state == "FAILED"
    assert "did not write its output artifact out (system.Dataset)" in task.message
    assert "forgot to write" in log_of(result, "no-output")
    assert states(result)["downstream"] == "SKIPPED"
    assert result.run.message.startswith("task no-output failed")


@dsl.component(packages_to_install=["surely-not-installed-pkg==1.0", "numpy"])
def needs_packages() -> str:
    return "never"


@dsl.pipeline
def with_packages():
    needs_packages()


def test_missing_packages_to_install_is_a_clear_error(run):
    result = run(with_packages)
    task = result.task("needs-packages")
    assert task.state == "FAILED"
    assert "packages_to_install not installed in this environment" in task.message
    assert "surely-not-installed-pkg==1.0" in task.message
    assert "numpy" not in task.message.split(":")[1]  # installed here: not listed


@dsl.component(packages_to_install=["numpy"])
def uses_numpy(n: int) -> float:
    import numpy

    return float(numpy.arange(n).sum())


@dsl.pipeline
def installed_packages() -> float:
    return uses_numpy(n=4).output


def test_installed_packages_to_install_run_without_pip(run):
    assert run(installed_packages).output == 6.0


@dsl.pipeline
def imports(uri: str) -> str:
    imported = dsl.importer(
        artifact_uri=uri, artifact_class=Dataset, metadata={"source": "test"}, reimport=False
    )
    return downstream(data=imported.output).output


def test_importer(run, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    result = run(imports, {"uri": str(data)})
    assert result.output == str(data)
    artifact = result.task("importer").outputs["artifacts"]["artifact"][0]
    assert artifact["metadata"] == {"source": "test"}
    assert artifact["type"]["schemaTitle"] == "system.Dataset"


@dsl.component
def write_data(text: str, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(text)
    out.metadata["rows"] = 1


@dsl.component
def count_calls(data: dsl.Input[Dataset], marker: str) -> str:
    with open(marker, "a") as f:
        f.write("x")
    with open(data.path) as f:
        return f.read()


@dsl.pipeline
def artifact_cache(text: str, marker: str) -> str:
    data = write_data(text=text).set_caching_options(False)
    return count_calls(data=data.outputs["out"], marker=marker).output


def test_cache_keys_on_artifact_content_not_uri(run, tmp_path):
    marker = tmp_path / "calls"
    assert run(artifact_cache, {"text": "one", "marker": str(marker)}).output == "one"
    # A new producer execution writes the same content at a new URI: a cache hit.
    second = run(artifact_cache, {"text": "one", "marker": str(marker)})
    assert second.task("count-calls").state == "CACHED"
    assert run(artifact_cache, {"text": "two", "marker": str(marker)}).output == "two"
    assert marker.read_text() == "xx"


def test_store_keeps_run_tasks_inputs_and_outputs(run):
    result = run(artifact_cache, {"text": "kept", "marker": os.devnull})
    from pipelines.store import PipelineStore
    from tuner.settings import TunerSettings

    store = PipelineStore(TunerSettings().store_url)
    try:
        record = store.get_run(result.name)
        assert record is not None and record.state == "SUCCEEDED"
        assert record.arguments == {"text": "kept", "marker": os.devnull}
        tasks = {t.path: t for t in store.tasks(record.uid)}
    finally:
        store.close()
    produced = tasks["write-data"].outputs["artifacts"]["out"][0]
    assert produced["metadata"] == {"rows": 1}
    assert Path(produced["uri"]).read_text() == "kept"
    assert tasks["count-calls"].inputs["artifacts"]["data"][0]["uri"] == produced["uri"]
    assert tasks["count-calls"].outputs["parameters"] == {"Output": "kept"}


def test_compiled_yaml_runs_like_the_function(run, tmp_path):
    from kfp import compiler

    path = tmp_path / "naps.yaml"
    compiler.Compiler().compile(four_naps, str(path))
    result = run(path, {"seconds": 0.0})
    assert result.state == "SUCCEEDED"
    assert result.run.source == str(path)
    assert sorted(t.outputs["parameters"]["Output"] for t in result.tasks) == list("abcd")


@dsl.pipeline
def cached_producer(text: str, marker: str) -> str:
    data = write_data(text=text)  # cached: a second run reuses the first's file
    return count_calls(data=data.outputs["out"], marker=marker).set_caching_options(False).output


def test_deleting_a_run_keeps_what_other_runs_cache_hits_reuse(run, tmp_path):
    """KFP keeps a deleted run's artifacts; here the runs whose cache hits name them get
    their own copy (paths rewritten) before the deleted run's folder goes."""
    from pipelines.cli import _LocalRuns
    from pipelines.store import PipelineStore
    from tuner.settings import TunerSettings

    first = run(cached_producer, {"text": "reused", "marker": os.devnull})
    second = run(cached_producer, {"text": "reused", "marker": os.devnull})
    assert second.task("write-data").state == "CACHED"
    old_uri = second.task("write-data").outputs["artifacts"]["out"][0]["uri"]
    first_root = Path(first.run.pipeline_root)
    assert Path(old_uri).is_relative_to(first_root)

    _LocalRuns().delete(first.name, "default")
    assert not first_root.exists()
    store = PipelineStore(TunerSettings().store_url)
    try:
        record = store.get_run(second.name)
        assert record is not None
        tasks = {t.path: t for t in store.tasks(record.uid)}
        assert store.get_run(first.name) is None
    finally:
        store.close()
    new_uri = tasks["write-data"].outputs["artifacts"]["out"][0]["uri"]
    assert Path(new_uri).is_relative_to(Path(record.pipeline_root)), new_uri
    assert Path(new_uri).read_text() == "reused"
    assert tasks["count-calls"].inputs["artifacts"]["data"][0]["uri"] == new_uri
    assert tasks["write-data"].outputs["artifacts"]["out"][0]["metadata"] == {"rows": 1}

    _LocalRuns().delete(second.name, "default")
    assert not Path(record.pipeline_root).exists()


def test_the_cache_is_kept_per_namespace(run):
    """A cache hit hands over the outputs, the run's name and folder of the execution it
    reuses: never another namespace's (a user of "b" learned what "a" ran, and got it)."""
    args = {"text": "private", "marker": os.devnull}
    first = run(cached_producer, args, namespace="team-a")
    assert first.task("write-data").state == "SUCCEEDED"
    other = run(cached_producer, args, namespace="team-b")
    assert other.task("write-data").state == "SUCCEEDED"  # ran again, nothing of team-a's
    assert other.task("write-data").cached_from is None
    again = run(cached_producer, args, namespace="team-a")
    assert again.task("write-data").state == "CACHED"
    assert again.task("write-data").cached_from == f"{first.name}/write-data"
