"""Two controllers (two processes) on one store never run the same experiment's trials.

The claim of an experiment is a compare-and-set: processes claiming at the same moment
(PostgreSQL's READ COMMITTED, SQLite's deferred transactions: both can read "no
controller" before either writes) never both win. Checked with real processes on a real
PostgreSQL database (and on SQLite), then end to end with two ``experiment run``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.util import running, wait_until
from tuner.store import Store, StoreError

ROUNDS = 25


def _claimer(url: str, uid: str, barrier, results) -> None:  # a child process
    store = Store(url)
    pid = os.getpid()
    try:
        for round_ in range(ROUNDS):
            barrier.wait(timeout=60)
            try:
                store.claim(uid, pid)
                won = True
            except StoreError:
                won = False
            results.put((round_, pid, won))
            barrier.wait(timeout=60)  # both have tried: the winner lets go
            if won:
                store.release(uid, pid)
            barrier.wait(timeout=60)
    finally:
        store.close()


def test_two_processes_claiming_at_once_never_both_win(database_url: str) -> None:
    store = Store(database_url)
    uid = store.create_experiment("default", "race", {"spec": {}}, None, "local").uid
    store.close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(database_url, uid, barrier, results)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=120) for _ in range(2 * ROUNDS)]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    winners: dict[int, list[int]] = {r: [] for r in range(ROUNDS)}
    for round_, pid, won in outcomes:
        if won:
            winners[round_].append(pid)
    assert all(len(w) == 1 for w in winners.values()), winners


_OBJECTIVE = """\
import os, sys, time
with open(sys.argv[2], "a") as ran:  # O_APPEND: one line per run of a trial
    ran.write(os.environ["HYPERFLOW_TRIAL_NAME"] + "\\n")
time.sleep(0.2)
print(f"loss={(float(sys.argv[1]) - 0.3) ** 2}")
"""


def test_two_experiment_runs_on_one_postgresql_store_run_each_trial_once(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "objective.py").write_text(_OBJECTIVE)
    ran = tmp_path / "ran.txt"
    (tmp_path / "exp.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata:
              name: shared
            spec:
              objective:
                type: minimize
                objectiveMetricName: loss
              algorithm:
                algorithmName: random
              parallelTrialCount: 2
              maxTrialCount: 6
              parameters:
                - name: x
                  parameterType: double
                  feasibleSpace: {{min: "0", max: "1"}}
              trialTemplate:
                trialParameters:
                  - name: x
                    reference: x
                command: [python, objective.py, "${{trialParameters.x}}", "{ran}"]
            """
        )
    )
    env = {"HYPERFLOW_DATABASE_URL": postgres_url, "HYPERFLOW_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "hyperflow", "experiment", "run", "-f", "exp.yaml", "--no-mlflow"]
    with (
        running(cmd, env=env, cwd=tmp_path, stdout=open(tmp_path / "a.out", "wb"), stderr=-2) as a,
        running(cmd, env=env, cwd=tmp_path, stdout=open(tmp_path / "b.out", "wb"), stderr=-2) as b,
    ):
        wait_until(lambda: a.poll() is not None and b.poll() is not None, timeout=240)
    outputs = [(tmp_path / f"{n}.out").read_text() for n in "ab"]
    codes = sorted([a.returncode, b.returncode])
    lines = ran.read_text().split()
    assert len(lines) == len(set(lines)) == 6, (lines, outputs)  # each trial ran once
    store = Store(postgres_url)
    try:
        record = store.get_experiment("default", "shared")
        assert record is not None and record.phase.value == "Succeeded", outputs
        trials = store.trials(record.uid)
        assert sorted(t.name for t in trials) == sorted(lines)
        assert {t.phase.value for t in trials} == {"Succeeded"}
    finally:
        store.close()
    # The one that lost either was refused while the other ran, or came after it and
    # found the experiment finished: never a second controller running trials.
    assert codes[1] in (0, 1), outputs
    if codes != [0, 0]:
        loser = outputs[[a.returncode, b.returncode].index(1)]
        assert "being run by another process" in loser or "already exists" in loser, loser


pytestmark = pytest.mark.timeout(600)


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_claim_from_another_host_lives_by_its_heartbeat_not_the_local_pids(
    postgres_url: str,
) -> None:
    """Two server replicas on different hosts share one PostgreSQL store (the production
    overlay): node-a's controller pid means nothing in node-b's process table. The hosts
    are the stores' (injected), the clock is emulated."""
    now = [1000.0]
    stores = {
        host: Store(postgres_url, host=host, clock=lambda: now[0], claim_lease=30.0)
        for host in ("node-a", "node-b")
    }
    a, b = stores["node-a"], stores["node-b"]
    try:
        uid = a.create_experiment("default", "shared", {"spec": {}}, None, "kubernetes").uid
        pid_on_a = _dead_pid()  # not a process here: only node-a could tell
        a.claim(uid, pid_on_a)
        record = b.get_experiment_by_uid(uid)
        assert (record.controller_pid, record.controller_host) == (pid_on_a, "node-a")
        with pytest.raises(StoreError, match=rf"pid {pid_on_a} on node-a"):
            b.claim(uid, os.getpid())
        # Renewed within the lease: still node-a's, however long it runs.
        for _ in range(3):
            now[0] += 25
            assert a.renew(uid, pid_on_a)
            with pytest.raises(StoreError):
                b.claim(uid, os.getpid())
        # node-a stopped renewing (gone with its host): after the lease node-b takes over,
        # and node-a, should it come back, learns it lost the claim.
        now[0] += 31
        b.claim(uid, os.getpid())
        record = a.get_experiment_by_uid(uid)
        assert (record.controller_pid, record.controller_host) == (os.getpid(), "node-b")
        assert not a.renew(uid, pid_on_a)
        a.release(uid, os.getpid())  # the same pid on another host: not a's to release
        assert a.get_experiment_by_uid(uid).controller_host == "node-b"
        # On its own host a claim is checked in the process table: a dead pid is no owner,
        # whatever its heartbeat says.
        b.release(uid, os.getpid())
        b.claim(uid, _dead_pid())
        b2 = Store(postgres_url, host="node-b", clock=lambda: now[0], claim_lease=30.0)
        try:
            b2.claim(uid, os.getpid())
            assert b2.get_experiment_by_uid(uid).controller_pid == os.getpid()
            assert b2.renew(uid, os.getpid())
        finally:
            b2.close()
    finally:
        for store in stores.values():
            store.close()


def test_finished_through_never_counts_a_trial_committed_while_it_reads(
    database_url: str,
) -> None:
    """The UI keeps the columns of the trials up to ``finishedThrough`` for good, so that
    number must come from one snapshot. Here a controller's commit lands right after each
    statement the query runs (two Created trials appear while it reads): the answer may
    be old, never a mix ("no trial open" before the commit, "the last is seq 1" after)."""
    from sqlalchemy import event

    from tuner.store.queries import finished_through, trial_rows

    store = Store(database_url)
    writer = Store(database_url)
    try:
        uid = store.create_experiment("default", "snap", {"spec": {}}, None, "local").uid
        pending = [0, 1]

        def commit_between(*_: object) -> None:
            while pending:
                seq = pending.pop(0)
                writer.add_trial(uid, f"t{seq}", seq, {}, f"/trials/t{seq}", "tok")

        event.listen(store.engine, "after_cursor_execute", commit_between)
        through = finished_through(store, uid)
        event.remove(store.engine, "after_cursor_execute", commit_between)
        assert not pending  # the commit did land while the query ran
        rows = trial_rows(store, uid, -1)
        assert [(seq, phase) for seq, _, phase, *_ in rows] == [(0, "Created"), (1, "Created")]
        assert through == -1, f"finishedThrough {through} counts trials that are Created"
    finally:
        writer.close()
        store.close()
