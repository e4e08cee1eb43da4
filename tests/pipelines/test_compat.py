"""Equivalents of kfp's local-execution test pipelines (kfp repository,
``test_data/sdk_compiled_pipelines/valid/...``), checked against what KFP's semantics say
their outputs must be. Written anew (same shapes, own components), not copied."""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import json
from pathlib import Path
from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    PipelineTaskFinalStatus,
)

from tests.pipelines.conftest import log_of, states

# -- add_numbers / concat_message / producer_consumer_param --------------------------------


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline
def add_numbers(a: int, b: int) -> int:
    return add(a=a, b=b).output


def test_add_numbers(run):
    result = run(add_numbers, {"a": 5, "b": 5})
    assert result.state == "SUCCEEDED"
    assert result.output == 10
    assert isinstance(result.output, int)


@dsl.component
def concat(first: str, second: str) -> str:
    return first + second


@dsl.pipeline
def concat_message(message1: str, message2: str) -> str:
    return concat(first=message1, second=message2).output


def test_concat_message(run):
    assert run(concat_message, {"message1": "Hello ", "message2": "World!"}).output == (
        "Hello World!"
    )


@dsl.component
def produce(text: str, out_path: dsl.OutputPath(str)):
    with open(out_path, "w") as f:
        f.write(text.upper())


@dsl.component
def consume(text: str) -> str:
    return f"consumed {text}"


@dsl.pipeline
def producer_consumer(text: str = "hello") -> str:
    producer = produce(text=text)
    return consume(text=producer.outputs["out_path"]).output


def test_producer_consumer_param_outputpath(run):
    result = run(producer_consumer)
    assert result.output == "consumed HELLO"


# -- flip_coin (conditions) -------------------------------------------------------------------


@dsl.component
def flip(side: str) -> str:
    return side


@dsl.component
def announce(text: str) -> str:
    return text


@dsl.pipeline
def flip_coin(side: str = "heads"):
    coin = flip(side=side)
    with dsl.If(coin.output == "heads"):
        announce(text="it was heads")
    with dsl.Else():
        announce(text="it was tails")


def test_flip_coin_runs_exactly_one_branch(run):
    for side, ran, skipped in (
        ("heads", "it was heads", "condition-3"),
        ("tails", "it was tails", "condition-2"),
    ):
        result = run(flip_coin, {"side": side})
        assert result.state == "SUCCEEDED"
        outputs = [
            t.outputs["parameters"]["Output"]
            for t in result.tasks
            if t.name.startswith("announce") and t.state in ("SUCCEEDED", "CACHED")
        ]
        assert outputs == [ran]
        skipped_task = result.task(f"condition-branches-1/{skipped}")
        assert skipped_task.state == "SKIPPED"
        assert "condition is false" in skipped_task.message


# -- collected_parameters (ParallelFor over an output, Collected, nested pipeline) ------------


@dsl.component
def split_ids(ids: str) -> list:
    return ids.split(",")


@dsl.component
def prepend_id(content: str) -> str:
    return f"model_id_{content}"


@dsl.component
def consume_ids(ids: list[str]) -> str:
    return "|".join(ids)


@dsl.pipeline
def collecting_parameters(model_ids: str = "") -> list[str]:
    ids = split_ids(ids=model_ids)
    with dsl.ParallelFor(ids.output) as model_id:
        prepended = prepend_id(content=model_id).set_caching_options(False)
    consume_ids(ids=dsl.Collected(prepended.output)).set_caching_options(False)
    return dsl.Collected(prepended.output)


@dsl.pipeline
def collected_param_pipeline() -> str:
    dag = collecting_parameters(model_ids="s1,s2,s3")
    return consume_ids(ids=dag.output).output


def test_collected_parameters_keep_item_order(run):
    result = run(collected_param_pipeline, parallelism=3)
    assert result.state == "SUCCEEDED"
    assert result.output == "model_id_s1|model_id_s2|model_id_s3"
    inner = result.task("collecting-parameters")
    assert inner.outputs["parameters"]["Output"] == ["model_id_s1", "model_id_s2", "model_id_s3"]
    iterations = [t for t in result.tasks if t.kind == "iteration"]
    assert len(iterations) == 3


# -- component_with_optional_inputs / dict_input / nested_return --------------------------------


@dsl.component
def optional_inputs(
    input1: str = "default value",
    input2: Optional[str] = None,  # noqa: UP045 (kfp needs typing.Optional)
    input3: Optional[str] = None,  # noqa: UP045
) -> str:
    import json

    return json.dumps([input1, input2, input3])


@dsl.pipeline
def optional_inputs_pipeline() -> str:
    return optional_inputs(input1="Hello", input2="World").output


def test_optional_inputs_get_their_defaults(run):
    assert json.loads(run(optional_inputs_pipeline).output) == ["Hello", "World", None]


@dsl.component
def dict_in(struct: dict) -> str:
    import json

    return json.dumps(struct, sort_keys=True)


@dsl.pipeline
def dict_input(struct: dict) -> str:
    return dict_in(struct=struct).output


def test_dict_input(run):
    assert json.loads(run(dict_input, {"struct": {"test_key": "test_value"}}).output) == {
        "test_key": "test_value"
    }


@dsl.component
def nested() -> list[dict[str, str]]:
    return [{"A_a": "1", "B_b": "2"}, {"A_a": "10", "B_b": "20"}]


@dsl.pipeline
def nested_return() -> list[dict[str, str]]:
    return nested().output


def test_nested_return(run):
    assert run(nested_return).output == [{"A_a": "1", "B_b": "2"}, {"A_a": "10", "B_b": "20"}]


# -- mixed_parameters / multiple_parameters_namedtuple (pipelines in pipelines) ---------------


@dsl.component
def core_comp() -> int:
    return 1


@dsl.component
def crust_comp(x: int, y: int) -> int:
    return x + y


@dsl.pipeline
def core() -> int:
    return core_comp().set_caching_options(False).output


@dsl.pipeline
def mantle() -> int:
    return core().set_caching_options(False).output


@dsl.pipeline
def crust() -> int:
    dag = mantle().set_caching_options(False)
    return crust_comp(x=2, y=dag.output).set_caching_options(False).output


def test_mixed_parameters_through_two_nested_pipelines(run):
    result = run(crust)
    assert result.output == 3
    assert result.task("mantle/core/core-comp").state == "SUCCEEDED"


@dsl.component
def pair() -> NamedTuple("outputs", val1=str, val2=str):  # type: ignore[valid-type]
    outputs = NamedTuple("outputs", val1=str, val2=str)  # noqa: UP014 (as KFP users write it)
    return outputs("foo", "bar")


@dsl.component
def join_pair(val1: str, val2: str) -> str:
    return f"{val1}-{val2}"


@dsl.pipeline
def pair_core() -> NamedTuple("outputs", val1=str, val2=str):  # type: ignore[valid-type]
    return pair().outputs


@dsl.pipeline
def pair_crust() -> str:
    dag = pair_core()
    return join_pair(val1=dag.outputs["val1"], val2=dag.outputs["val2"]).output


def test_namedtuple_outputs_through_a_nested_pipeline(run):
    result = run(pair_crust)
    assert result.output == "foo-bar"
    assert result.task("pair-core").outputs["parameters"] == {"val1": "foo", "val2": "bar"}


# -- component_with_env_variable -------------------------------------------------------------


@dsl.component
def read_env(var_name: str) -> str:
    import os

    return os.environ.get(var_name, "UNSET")


@dsl.pipeline
def env_variable(var_name: str = "KFP_TEST_ENV_VAR") -> str:
    return read_env(var_name=var_name).set_env_variable("KFP_TEST_ENV_VAR", "env_var_value").output


@dsl.pipeline
def no_env_variable(var_name: str = "KFP_TEST_ENV_VAR") -> str:
    return read_env(var_name=var_name).output


def test_env_variable_set_for_its_task_only(run):
    assert run(env_variable).output == "env_var_value"
    # The same warm workers ran it: the variable must not leak into the next task.
    assert run(no_env_variable).output == "UNSET"


# -- lightweight_python_functions_with_outputs (artifacts, NamedTuple with artifacts) ------------


@dsl.component
def add_numbers_c(first: int, second: int) -> int:
    return first + second


@dsl.component
def output_artifact(number: int, message: str) -> Dataset:
    return "\n".join(message for _ in range(number))


@dsl.component
def output_named_tuple(
    artifact: Input[Dataset],
) -> NamedTuple("Outputs", [("scalar", str), ("metrics", Metrics), ("model", Model)]):  # type: ignore[valid-type]
    import json
    from collections import namedtuple

    with open(artifact.path) as f:
        contents = f.read()
    metrics = json.dumps({"metrics": [{"name": "accuracy", "numberValue": 0.9}]})
    output = namedtuple("Outputs", ["scalar", "metrics", "model"])
    return output("123", metrics, "Model contents: " + contents)


@dsl.pipeline
def functions_with_outputs(
    first_message: str, second_message: str, first_number: int, second_number: int
):
    concat_op = concat(first=first_message, second=second_message)
    add_op = add_numbers_c(first=first_number, second=second_number)
    artifact_op = output_artifact(number=add_op.output, message=concat_op.output)
    output_named_tuple(artifact=artifact_op.output)


def test_lightweight_functions_with_outputs(run):
    result = run(
        functions_with_outputs,
        {
            "first_message": "Hello",
            "second_message": " World",
            "first_number": 1,
            "second_number": 2,
        },
    )
    assert result.state == "SUCCEEDED"
    dataset = result.task("output-artifact").outputs["artifacts"]["Output"][0]
    assert dataset["type"]["schemaTitle"] == "system.Dataset"
    assert Path(dataset["uri"]).read_text() == "Hello World\nHello World\nHello World"
    final = result.task("output-named-tuple").outputs
    assert final["parameters"] == {"scalar": "123"}
    model = final["artifacts"]["model"][0]
    assert Path(model["uri"]).read_text() == "Model contents: " + Path(dataset["uri"]).read_text()
    assert json.loads(Path(final["artifacts"]["metrics"][0]["uri"]).read_text())["metrics"]


# -- output_metrics ----------------------------------------------------------------------------


@dsl.component
def metrics_out(value: int, metrics: Output[Metrics]):
    metrics.log_metric("accuracy", value)
    metrics.log_metric("loss", 1.5)


@dsl.pipeline
def output_metrics(value: int = 42):
    metrics_out(value=value)


def test_output_metrics_are_artifact_metadata(run):
    result = run(output_metrics)
    metrics = result.task("metrics-out").outputs["artifacts"]["metrics"][0]
    assert metrics["type"]["schemaTitle"] == "system.Metrics"
    assert metrics["metadata"] == {"accuracy": 42, "loss": 1.5}


# -- pipeline_with_loops ------------------------------------------------------------------------


@dsl.component
def loop_args() -> list[dict[str, str]]:
    return [{"A_a": "1", "B_b": "2"}, {"A_a": "10", "B_b": "20"}]


@dsl.component
def text(msg: str) -> str:
    return msg


@dsl.component
def struct_text(struct: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(struct.items()))


@dsl.pipeline
def pipeline_with_loops(loop_parameter: list[str]):
    with dsl.ParallelFor(loop_parameter) as item:
        text(msg=item)
    generated = loop_args()
    with dsl.ParallelFor(generated.output) as item:
        struct_text(struct=item)
        text(msg=item.A_a)
        text(msg=item.B_b)
    with dsl.ParallelFor([{"A_a": "3", "B_b": "4"}]) as item:
        text(msg=item.A_a)


def test_pipeline_with_loops(run):
    result = run(pipeline_with_loops, {"loop_parameter": ["item1", "item2", "item3"]})
    assert result.state == "SUCCEEDED"
    produced = sorted(
        t.outputs["parameters"]["Output"]
        for t in result.tasks
        if t.kind == "container" and t.name != "loop-args"
    )
    assert produced == sorted(
        ["item1", "item2", "item3", "A_a=1,B_b=2", "A_a=10,B_b=20", "1", "2", "10", "20", "3"]
    )


# -- pipeline_in_pipeline (with a container component) ------------------------------------------


@dsl.component
def print_op1(msg: str) -> str:
    print(msg)
    return msg


@dsl.container_component
def print_op2(msg: str, out: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", 'echo "$0"; printf "%s!" "$0" > "$1"', msg, out]
    )


@dsl.pipeline
def inner_pipeline(msg: str) -> str:
    task = print_op1(msg=msg)
    return print_op2(msg=task.output).outputs["out"]


@dsl.pipeline
def pipeline_in_pipeline() -> str:
    print_op1(msg="Hello")
    return inner_pipeline(msg="world").output


def test_pipeline_in_pipeline_with_container_component(run):
    result = run(pipeline_in_pipeline)
    assert result.output == "world!"
    container = result.task("inner-pipeline/print-op2")
    assert container.details["image"] == "alpine"
    assert "world" in log_of(result, "inner-pipeline/print-op2")


@dsl.container_component
def image_entrypoint():
    return dsl.ContainerSpec(image="busybox")  # no command: the image's entrypoint


@dsl.pipeline
def entrypoint_then_more() -> str:
    first = image_entrypoint()
    return print_op1(msg="after").after(first).output


def test_a_container_without_a_command_fails_the_run_and_skips_what_follows(run):
    # It failed, but the run went on and ended SUCCEEDED.
    result = run(entrypoint_then_more)
    assert result.state == "FAILED"
    assert states(result) == {"image-entrypoint": "FAILED", "print-op1": "SKIPPED"}
    message = result.task("image-entrypoint").message
    assert "the container has no command" in message and "image busybox" in message


# -- pipeline channels inside dict and list constants; KFP's run placeholders --------------


@dsl.component
def seven() -> float:
    return 7.0


@dsl.component
def echo_inputs(d: dict, items: list, job: str, task: str, job_id: str, task_id: str) -> str:
    import json

    return json.dumps([d, items, job, task, job_id, task_id])


@dsl.pipeline
def channels_in_collections(lo: float = 0.5, who: str = "bob") -> str:
    n = seven()
    return echo_inputs(
        d={"x": {"min": lo}, "who": who, "n": n.output, "s": f"hi {who}"},
        items=[lo, who, n.output],
        job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        task=f"{dsl.PIPELINE_TASK_NAME_PLACEHOLDER}!",
        job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
    ).output


def test_channels_in_dicts_and_lists_and_run_placeholders_are_filled_in(run):
    # They reached the component as "{{$.inputs.parameters['pipelinechannel--lo']}}" text.
    result = run(channels_in_collections, {"who": "ann"})
    assert result.state == "SUCCEEDED"
    d, items, job, task, job_id, task_id = json.loads(result.output)
    assert d == {"x": {"min": 0.5}, "who": "ann", "n": 7.0, "s": "hi ann"}
    assert items == [0.5, "ann", 7.0]
    assert job == result.run.name and job_id == result.run.uid
    assert task == "echo-inputs!"
    assert len(task_id) == 36 and "{{" not in task_id


# -- if_elif_else_complex (nested conditions, OneOf, loops inside branches, Collected) -----------


@dsl.component
def number(trial: int) -> int:
    return [1234, 6789, 5000][trial - 1]


@dsl.component
def even_or_odd(num: int) -> str:
    return "odd" if num % 2 else "even"


@dsl.component
def say(text: str) -> str:
    return text


@dsl.component
def join_ints(ints: list[int]) -> str:
    return ",".join(map(str, ints))


@dsl.pipeline
def lucky_number(add_drumroll: bool = True, trials: list[int] = [1, 2, 3]) -> str:  # noqa: B006
    with dsl.ParallelFor(trials) as trial:
        num = number(trial=trial)
        with dsl.If(add_drumroll == True):  # noqa: E712, SIM117 (nested groups on purpose)
            with dsl.If(trial == 3):
                say(text="drumroll")
        with dsl.If(num.output < 5000):
            parity = even_or_odd(num=num.output)
            with dsl.If(parity.output == "even"):
                t1 = say(text="low even")
            with dsl.Else():
                t2 = say(text="low odd")
            say(text=dsl.OneOf(t1.output, t2.output))
        with dsl.Elif(num.output > 5000):
            parity = even_or_odd(num=num.output)
            with dsl.If(parity.output == "even"):
                t3 = say(text="high even")
            with dsl.Else():
                t4 = say(text="high odd")
            say(text=dsl.OneOf(t3.output, t4.output))
        with dsl.Else():
            say(text="lucky 5000")
            with dsl.ParallelFor([1, 2]):
                say(text="lucky again")
    return join_ints(ints=dsl.Collected(num.output)).output


def test_if_elif_else_complex(run):
    result = run(lucky_number, parallelism=4)
    assert result.state == "SUCCEEDED", result.run.message
    assert result.output == "1234,6789,5000"
    said = sorted(
        t.outputs["parameters"]["Output"]
        for t in result.tasks
        if t.name.startswith("say") and t.state in ("SUCCEEDED", "CACHED")
    )
    assert said == sorted(
        ["drumroll", "low even", "low even", "high odd", "high odd", "lucky 5000"]
        + ["lucky again"] * 2
    )


# -- local_execution: exit handler, retry, oneof, ignore upstream failure, caching, artifacts --


@dsl.component
def record_exit(status: PipelineTaskFinalStatus) -> str:
    return f"exit:{status.state}:{status.pipeline_task_name}"


@dsl.component
def echo(message: str) -> str:
    return message


@dsl.component
def fail(message: str) -> str:
    raise RuntimeError(message)


@dsl.pipeline
def with_exit_handler(message: str = "hello"):
    exit_task = record_exit()
    with dsl.ExitHandler(exit_task):
        echo(message=message)


@dsl.pipeline
def with_failing_exit_handler(message: str = "boom"):
    exit_task = record_exit()
    with dsl.ExitHandler(exit_task):
        failed = fail(message=message)
        echo(message="after").after(failed)


def test_exit_handler_sees_success(run):
    result = run(with_exit_handler)
    assert result.state == "SUCCEEDED"
    assert result.task("record-exit").outputs["parameters"]["Output"] == (
        "exit:SUCCEEDED:exit-handler-1"
    )


def test_exit_handler_runs_after_a_failure_and_sees_it(run):
    result = run(with_failing_exit_handler)
    assert result.state == "FAILED"
    assert "task exit-handler-1/fail failed: RuntimeError: boom" in result.run.message
    assert states(result)["exit-handler-1/echo"] == "SKIPPED"
    assert "upstream task fail failed" in result.task("exit-handler-1/echo").message
    assert result.task("record-exit").outputs["parameters"]["Output"] == (
        "exit:FAILED:exit-handler-1"
    )
    assert "RuntimeError: boom" in log_of(result, "exit-handler-1/fail")


@dsl.component
def flaky(counter_path: str) -> str:
    import os

    count = 0
    if os.path.exists(counter_path):
        with open(counter_path) as f:
            count = int(f.read().strip() or "0")
    count += 1
    with open(counter_path, "w") as f:
        f.write(str(count))
    if count <= 2:
        raise RuntimeError(f"flaky attempt {count}")
    return f"attempt={count}"


@dsl.pipeline
def with_retry(counter_path: str, retries: int = 3) -> str:
    return flaky(counter_path=counter_path).set_retry(num_retries=3, backoff_duration="0s").output


@dsl.pipeline
def with_too_few_retries(counter_path: str) -> str:
    return flaky(counter_path=counter_path).set_retry(num_retries=1, backoff_duration="0s").output


def test_retry_until_success(run, tmp_path):
    result = run(with_retry, {"counter_path": str(tmp_path / "count")})
    assert result.output == "attempt=3"
    assert result.task("flaky").attempts == 3


def test_retries_exhausted_fail_the_task(run, tmp_path):
    result = run(with_too_few_retries, {"counter_path": str(tmp_path / "count")})
    assert result.state == "FAILED"
    task = result.task("flaky")
    assert (task.state, task.attempts) == ("FAILED", 2)
    assert task.message == "RuntimeError: flaky attempt 2"


@dsl.component
def branch_a() -> str:
    return "A"


@dsl.component
def branch_b() -> str:
    return "B"


@dsl.component
def tag_selected(value: str) -> str:
    return f"selected:{value}"


@dsl.pipeline
def with_oneof(pick_a: bool = True) -> str:
    with dsl.If(pick_a == True):  # noqa: E712
        a = branch_a()
    with dsl.Else():
        b = branch_b()
    return tag_selected(value=dsl.OneOf(a.output, b.output)).output


def test_oneof_takes_the_branch_that_ran(run):
    assert run(with_oneof, {"pick_a": True}).output == "selected:A"
    assert run(with_oneof, {"pick_a": False}).output == "selected:B"


@dsl.component
def write_marker(marker_path: str, upstream: str = "none") -> str:
    with open(marker_path, "w") as f:
        f.write(f"cleanup_ran:{upstream}")
    return "cleanup_ran"


@dsl.pipeline
def with_ignore_upstream_failure(marker_path: str):
    upstream = fail(message="upstream failed intentionally")
    write_marker(marker_path=marker_path, upstream=upstream.output).ignore_upstream_failure()


def test_ignore_upstream_failure_runs_with_the_default(run, tmp_path):
    marker = tmp_path / "marker"
    result = run(with_ignore_upstream_failure, {"marker_path": str(marker)})
    assert result.state == "FAILED"  # the failed task still fails the run, as in KFP
    assert states(result)["write-marker"] == "SUCCEEDED"
    assert marker.read_text() == "cleanup_ran:none"


@dsl.component
def add_one(x: int, marker: str) -> int:
    with open(marker, "a") as f:
        f.write("ran\n")
    return x + 1


@dsl.pipeline
def with_caching(marker: str, x: int = 1) -> int:
    return add_one(x=x, marker=marker).set_caching_options(enable_caching=True).output


@dsl.pipeline
def without_caching(marker: str, x: int = 1) -> int:
    return add_one(x=x, marker=marker).set_caching_options(enable_caching=False).output


def test_caching(run, tmp_path):
    marker = tmp_path / "ran"
    first = run(with_caching, {"marker": str(marker)})
    second = run(with_caching, {"marker": str(marker)})
    assert (first.output, second.output) == (2, 2)
    assert second.task("add-one").state == "CACHED"
    assert second.task("add-one").cached_from == f"{first.name}/add-one"
    assert marker.read_text() == "ran\n"
    assert run(with_caching, {"marker": str(marker), "x": 5}).output == 6  # other input: runs
    assert run(with_caching, {"marker": str(marker)}, cache=False).output == 2  # --no-cache
    assert run(without_caching, {"marker": str(marker)}).task("add-one").state == "SUCCEEDED"
    assert marker.read_text() == "ran\n" * 4


@dsl.component
def write_artifact(index: int, out: Output[Artifact]):
    with open(out.path, "w") as f:
        f.write(str(index))


@dsl.component
def read_and_join(artifacts: list[Artifact]) -> str:
    parts = []
    for artifact in artifacts:
        with open(artifact.path) as f:
            parts.append(f.read().strip())
    return ",".join(parts)


@dsl.pipeline
def with_collected_artifacts() -> str:
    with dsl.ParallelFor([0, 1, 2], parallelism=2) as i:
        producer = write_artifact(index=i)
    return read_and_join(artifacts=dsl.Collected(producer.outputs["out"])).output


def test_collected_artifacts_in_item_order(run):
    result = run(with_collected_artifacts)
    assert result.output == "0,1,2"


# -- f-strings over pipeline channels -------------------------------------------------------------


@dsl.pipeline
def f_strings(prefix: str = "run") -> list[str]:
    with dsl.ParallelFor(["a", "b"]) as family:
        named = echo(message=f"{prefix}-{family}")
    return dsl.Collected(named.output)


def test_f_string_arguments_resolve_their_channels(run):
    assert run(f_strings, {"prefix": "digits"}).output == ["digits-a", "digits-b"]


# -- artifact types: ClassificationMetrics, HTML, Markdown ---------------------------------------


@dsl.component
def reports(
    classification: Output[ClassificationMetrics], html: Output[HTML], markdown: Output[Markdown]
):
    classification.log_confusion_matrix(["cat", "dog"], [[9, 1], [2, 8]])
    with open(html.path, "w") as f:
        f.write("<h1>report</h1>")
    with open(markdown.path, "w") as f:
        f.write("# report")


@dsl.pipeline
def artifact_types():
    reports()


def test_classification_metrics_html_markdown(run):
    outputs = run(artifact_types).task("reports").outputs["artifacts"]
    matrix = outputs["classification"][0]
    assert matrix["type"]["schemaTitle"] == "system.ClassificationMetrics"
    assert matrix["metadata"]["confusionMatrix"]["rows"] == [
        {"row": [9, 1]},
        {"row": [2, 8]},
    ]
    assert Path(outputs["html"][0]["uri"]).read_text() == "<h1>report</h1>"
    assert outputs["markdown"][0]["type"]["schemaTitle"] == "system.Markdown"
    # Viewers know them by their extension (MLflow's artifact pane renders .html and .md).
    assert outputs["html"][0]["uri"].endswith("/artifacts/html.html")
    assert outputs["markdown"][0]["uri"].endswith("/artifacts/markdown.md")


# -- pipeline_with_parallelfor_parallelism: at most `parallelism` iterations at once --------------


@dsl.component
def slow_echo(message: str) -> str:
    import time

    time.sleep(0.3)
    return message


@dsl.component
def numbers(n: int) -> list:
    return list(range(n))


@dsl.pipeline
def loop_parallelism(n: int = 4):
    with dsl.ParallelFor(numbers(n=n).output, parallelism=2) as item:
        slow_echo(message=f"item {item}").set_caching_options(False)


def test_parallelfor_parallelism_bounds_iterations(run):
    result = run(loop_parallelism, parallelism=4)
    echoes = [t for t in result.tasks if t.name == "slow-echo"]
    assert sorted(t.outputs["parameters"]["Output"] for t in echoes) == [
        f"item {i}" for i in range(4)
    ]
    events = sorted([(t.started_at, 1) for t in echoes] + [(t.finished_at, -1) for t in echoes])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
