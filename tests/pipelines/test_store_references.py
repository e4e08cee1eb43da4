"""``PipelineStore.referencing`` / ``rewrite_paths`` (what a run's delete uses to keep the
artifacts other runs' cache hits reuse) on every database the store supports."""

from __future__ import annotations

from typing import Any

from pipelines.store import PipelineStore

RUN: dict[str, Any] = {
    "namespace": "default",
    "pipeline_name": "p",
    "spec": {},
    "arguments": {},
    "resume_key": "k",
    "source": "s",
    "parallelism": 1,
    "cache": True,
    "state": "SUCCEEDED",
    "message": "",
    "created_at": 0.0,
}
TASK: dict[str, Any] = {
    "name": "t",
    "parent": "",
    "kind": "container",
    "component": "c",
    "state": "CACHED",
    "message": "",
    "attempts": 1,
    "task_dir": "",
    "created_at": 0.0,
}


def test_runs_naming_a_folder_are_found_and_rewritten(database_url: str) -> None:
    store = PipelineStore(database_url)
    try:
        a = store.create_run(name="a", pipeline_root="/r/a_1", **RUN)
        b = store.create_run(name="b", pipeline_root="/r/b", outputs={"x": "/r/a_1/t/o"}, **RUN)
        c = store.create_run(name="c", pipeline_root="/r/c", **RUN)
        store.save_task(b.uid, "t", inputs={"u": ["/r/a_1/t/o"]}, outputs=None, **TASK)
        store.save_task(b.uid, "u", inputs={"u": "/r/b/u/o"}, outputs=None, **TASK)
        store.save_task(c.uid, "t", inputs=None, outputs={"o": "/r/a_1/é/o"}, **TASK)
        store.save_task(a.uid, "t", inputs=None, outputs={"o": "/r/a_1/t/o"}, **TASK)
        found = {r.name: [t.path for t in ts] for r, ts in store.referencing("/r/a_1/", a.uid)}
        assert found == {"b": ["t"], "c": ["t"]}  # not a itself, not b's own task "u"
        # "_" is no wildcard: the query /r/a_1/ must not find a path of /r/aX1/.
        x = store.create_run(name="x", pipeline_root="/r/x", outputs={"o": "/r/aX1/o"}, **RUN)
        assert sorted(r.name for r, _ in store.referencing("/r/a_1/", a.uid)) == ["b", "c"]
        assert x.name not in [r.name for r, _ in store.referencing("/r/a_1/", a.uid)]
        [(run, [task])] = store.referencing("/r/a_1/é/", a.uid)
        store.rewrite_paths(run.uid, {"x": "/new"}, {task.id: ({"u": "/new"}, None)})
        assert store.get_run_by_uid(c.uid).outputs == {"x": "/new"}
        [task] = [t for t in store.tasks(c.uid)]
        assert (task.inputs, task.outputs) == ({"u": "/new"}, None)
    finally:
        store.close()
