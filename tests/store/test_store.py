import multiprocessing
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import paths
from workbench.errors import StoreError
from workbench.jobs import resume_run
from workbench.store import SCHEMA_VERSION, RunStatus, Store
from workbench.store.lifecycle import Beat

pytestmark = pytest.mark.backends  # every test on SQLite and on PostgreSQL, but those of the file itself


@pytest.mark.sqlite_only
def test_sqlite_file_uses_wal_foreign_keys_and_busy_timeout(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    assert store.path.exists() and store.schema_version() == SCHEMA_VERSION


def test_run_lifecycle_and_guarded_transitions(store: Store) -> None:
    run = store.create_run("vit", {"lr": 0.001})
    assert run.name == f"vit-{run.id}" and run.status == RunStatus.QUEUED
    assert store.transition(run.id, RunStatus.RUNNING, only_from=[RunStatus.QUEUED])
    assert store.transition(run.id, RunStatus.CANCELLED, only_from=[RunStatus.RUNNING])
    # a late "finished" from the worker must not undo the cancel
    assert not store.transition(run.id, RunStatus.FINISHED, only_from=[RunStatus.RUNNING])
    assert store.get_run(run.id).status == RunStatus.CANCELLED
    with pytest.raises(StoreError, match="there is no run 999"):
        store.get_run(999)


def test_lineage_and_parent_protection(store: Store) -> None:
    parent = store.create_run("vit", {})
    child = store.create_run("vit", {}, parents={"encoder": parent.id})
    assert store.parents(child.id)["encoder"].id == parent.id
    assert [(role, r.id) for role, r in store.children(parent.id)] == [("encoder", child.id)]
    with pytest.raises(StoreError, match=f"run {parent.id} is the parent of run {child.id}"):
        store.delete_run(parent.id)
    with pytest.raises(StoreError, match="does not exist"):
        store.create_run("vit", {}, parents={"encoder": 12345})
    assert [r.id for r in store.list_runs()] == [parent.id, child.id]  # the refused run left nothing


def test_a_run_kept_keeps_its_parents_in_the_trash(store: Store) -> None:
    """mae -> finetune -> deit student outside the Trash: the two in it stay, the lone run goes."""
    from workbench.jobs.trash import deletable, staying

    mae = store.create_run("mae", {})
    tuned = store.create_run("finetune", {}, parents={"encoder": mae.id})
    store.create_run("deit", {}, parents={"teacher": tuned.id})
    lone = store.create_run("vit", {})
    go, stay = deletable(store, [mae.id, tuned.id, lone.id])
    assert go == [lone.id] and stay == {tuned.id: [tuned.id + 1], mae.id: [tuned.id]}
    assert staying(stay) == (f"run {mae.id} stays in the Trash: run {tuned.id} was trained from it; "
                             f"run {tuned.id} stays in the Trash: run {tuned.id + 1} was trained from it")


def test_trashed_runs_are_hidden_restorable_and_never_active(store: Store) -> None:
    done, running = store.create_run("vit", {}), store.create_run("vit", {})
    store.update_run(done.id, status="finished")
    store.update_run(running.id, status="running")
    assert store.set_trashed([done.id, running.id], True) == [done.id]  # a running run never goes
    assert [r.id for r in store.list_runs()] == [running.id]
    assert [r.id for r in store.list_runs(trashed=True)] == [done.id]
    assert store.list_runs(status="finished") == []  # pickers and schedulers never see it
    assert store.get_run(done.id).trashed_at is not None  # still readable by id (studies, lineage)
    assert store.set_trashed([done.id], True) == []
    assert store.set_trashed([done.id], False) == [done.id]
    assert [r.id for r in store.list_runs()] == [done.id, running.id]


def test_a_job_that_starts_while_its_run_is_still_submitting_takes_it(store: Store) -> None:
    """Its scheduler died between sbatch and recording the job: the job's first task takes the run,
    and the scheduler's late record (or a sweep's) no longer applies."""
    run = store.create_run("vit", {"executor": "slurm"})
    assert store.claim_submission(run.id) and not store.claim_submission(run.id)
    assert store.stale_submissions(3600) == [] and store.stale_submissions(-1) == [run.id]
    assert store.start_job(run.id, "slurm:77", host="node1", token="t77")
    taken = store.get_run(run.id)
    assert (taken.status, taken.job_id, taken.job_state, taken.worker_token) == ("running", "slurm:77", "RUNNING",
                                                                                 "t77")
    assert not store.settle_submission(run.id, "slurm:77", "PENDING") and store.stale_submissions(-1) == []
    assert not store.start_job(run.id, "slurm:78", host="node2", token="t78")  # another job: not its run


def test_metric_columns_equal_the_row_reads_key_by_key(store: Store) -> None:
    run, other = store.create_run("vit", {}), store.create_run("vit", {})
    rows = [(s, s / 10, key, 1.0 / s if key == "train/loss" else s * 0.01, 1e9 + s)
            for s in range(1, 31) for key in ("train/loss", "val/top1")]
    store.add_metrics(run.id, rows)
    store.add_metrics(other.id, [(1, 0.1, "train/loss", 5.0, 1e9)])
    last, columns = store.metric_columns(run.id)
    by_rows = store.metrics(run.id)
    assert last == by_rows[-1][0] and sorted(columns) == ["train/loss", "val/top1"]
    for key, table in columns.items():
        expected = np.array([(st, ep, wall, value) for _, st, ep, k, value, wall in by_rows if k == key])
        np.testing.assert_array_equal(table, expected)  # in insertion order, the values exact
    assert store.metric_columns(run.id, after_id=last) == (last, {})
    store.add_metrics(run.id, [(31, 3.1, "val/loss", 0.5, 1e9 + 31)])
    newer, more = store.metric_columns(run.id, after_id=last)
    assert newer > last and list(more) == ["val/loss"] and more["val/loss"].tolist() == [[31, 3.1, 1e9 + 31, 0.5]]


def test_metric_ranges_of_many_runs_in_one_query(store: Store) -> None:
    a, b = store.create_run("vit", {}), store.create_run("vit", {})
    store.add_metrics(a.id, [(1, 0.1, "val/top1", 0.2, 0.0), (2, 0.2, "val/top1", 0.5, 0.0), (2, 0.2, "x", 9.0, 0.0)])
    store.add_metrics(b.id, [(1, 0.1, "val/top1", 0.3, 0.0)])
    assert store.metric_ranges([a.id, b.id], ["val/top1"]) == {a.id: {"val/top1": (0.2, 0.5)},
                                                               b.id: {"val/top1": (0.3, 0.3)}}


def test_incremental_metric_reads(store: Store) -> None:
    run = store.create_run("vit", {})
    store.add_metrics(run.id, [(s, s / 10, "train/loss", 2.0 - s / 100, time.time()) for s in range(1, 51)])
    first = store.metrics(run.id)
    assert len(first) == 50
    store.add_metrics(run.id, [(51, 5.1, "train/loss", 1.0, time.time()), (51, 5.1, "val/top1", 0.5, time.time())])
    newer = store.metrics(run.id, after_id=first[-1][0])
    assert [(r[1], r[3]) for r in newer] == [(51, "train/loss"), (51, "val/top1")]
    assert store.last_metrics(run.id) == {"train/loss": (51, 1.0), "val/top1": (51, 0.5)}
    assert store.metric_keys(run.id) == ["train/loss", "val/top1"]
    assert store.rewind(run.id, 40, 60, ["checkpoint"], token="not its") is None  # another start's: nothing
    assert len(store.metrics(run.id)) == 52
    token = store.adopt(run.id)
    assert store.rewind(run.id, 40, 60, ["checkpoint"], token) == []  # what a resume from step 40 writes again
    assert max(r[1] for r in store.metrics(run.id)) == 40 and len(store.metrics(run.id)) == 40
    assert (store.get_run(run.id).step, store.get_run(run.id).total_steps) == (40, 60)


def test_artifacts_latest_and_relative_paths(store: Store, home: Path) -> None:
    run = store.create_run("vit", {})
    for step in (10, 30, 20):
        store.add_artifact(run.id, "checkpoint", home / "runs" / f"c{step}.pt", step=step)
    store.add_artifact(run.id, "image", home / "img.png", step=5, name="predictions")
    latest = store.latest_artifact(run.id, "checkpoint")
    assert latest.step == 30 and latest.path == "runs/c30.pt"
    assert store.abspath(latest) == home / "runs" / "c30.pt"
    assert [a.step for a in store.artifacts(run.id, "checkpoint")] == [10, 20, 30]
    assert store.latest_artifact(run.id, "image", name="predictions").step == 5
    assert store.latest_artifact(run.id, "export") is None


@pytest.mark.sqlite_only
def test_locked_database_gives_a_clear_error(store: Store) -> None:
    run = store.create_run("vit", {})
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        impatient = Store(store.path, busy_timeout_s=0.3)
        with pytest.raises(StoreError, match="locked by another process.*retry"):
            impatient.update_run(run.id, step=5)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.get_run(run.id).step == 0  # nothing half-written


def _write_rows(db: str, run_id: int, n: int) -> None:
    store = Store(db)
    for start in range(0, n, 100):
        store.add_metrics(run_id, [(s, 0.0, "train/loss", float(s), time.time()) for s in range(start, start + 100)])
        store.update_run(run_id, step=start)


def test_concurrent_writer_processes_lose_nothing(store: Store) -> None:
    runs = [store.create_run("vit", {}) for _ in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_rows, args=(store.target, r.id, 2000)) for r in runs]
    for p in procs:
        p.start()
    reads = 0
    while any(p.is_alive() for p in procs):  # a reader polling meanwhile, like the GUI
        store.list_runs()
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    for r in runs:
        assert len(store.metrics(r.id)) == 2000
    assert reads > 0


def test_archived_runs_leave_the_lists_keep_everything_and_a_resume_brings_them_back(store: Store) -> None:
    from workbench.jobs import resume_run

    ended, live = store.create_run("vit", {}), store.create_run("vit", {})
    store.update_run(ended.id, status="failed", summary={"val/top1": 0.5})
    store.add_metrics(ended.id, [(1, 0.1, "train/loss", 1.0, 100.0)])
    assert store.set_archived([ended.id, live.id], True) == [ended.id]  # a queued run stays
    assert [r.id for r in store.list_runs()] == [live.id] and [r.id for r in store.list_runs(archived=True)] == [ended.id]
    kept = store.get_run(ended.id)
    assert kept.summary == {"val/top1": 0.5} and len(store.metrics(ended.id)) == 1 and kept.archived_at
    assert store.set_archived([ended.id], True) == []  # once is enough
    store.set_trashed([ended.id], True)
    assert [r.id for r in store.list_runs(trashed=True)] == [ended.id]  # the Trash shows it, archived or not
    store.set_trashed([ended.id], False)
    resume_run(store, ended.id)  # resuming takes it out: a queued run the list hid would never be seen
    assert store.get_run(ended.id).archived_at is None and store.get_run(ended.id).status == "queued"


def test_run_signatures_change_with_what_a_run_list_shows(store: Store) -> None:
    a, b = store.create_run("vit", {"lr": 0.001}), store.create_run("vit", {})
    before = store.run_signatures()
    assert list(before) == [a.id, b.id]
    store.update_run(a.id, summary={"val/top1": 0.1234})
    once = store.run_signatures()
    store.update_run(a.id, summary={"val/top1": 0.1235})  # the same length: still a change
    twice = store.run_signatures()
    assert before[a.id] != once[a.id] != twice[a.id] and before[b.id] == twice[b.id]
    for change in ({"step": 5}, {"status": "running"}, {"tags": "x"}, {"notes": "n"}, {"job_state": "PENDING"}):
        was = store.run_signatures()[b.id]
        store.update_run(b.id, **change)
        assert store.run_signatures()[b.id] != was, change
    was = store.run_signatures()[b.id]
    store.update_run(b.id, heartbeat_at=123.0, pid=42)  # nothing a list shows
    assert store.run_signatures()[b.id] == was
    store.update_run(a.id, status="finished")
    assert store.set_archived([a.id], True) == [a.id]
    assert list(store.run_signatures()) == [b.id] and list(store.run_signatures(archived=True)) == [a.id]


def test_only_the_start_that_holds_a_run_may_start_train_and_beat_for_it(store: Store) -> None:
    """Each claim gives the run a new token, handed to the worker it launches. A worker judged gone
    while alive (frozen in its imports, say), whose run was resumed and claimed again, can neither
    start the run nor beat for it; the one holding the run can. Ended by someone else (a cancel's
    grace run out), the run is still its worker's to stop with a checkpoint."""
    run = store.create_run("vit", {})
    assert store.claim_run(run.id, host=paths.host(), limit=1)
    first = store.get_run(run.id).worker_token
    assert first and store.beat(run.id, first) == Beat(stop=False, taken=False)
    store.transition(run.id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING])  # judged gone
    assert store.beat(run.id, first) == Beat(stop=True, taken=False)  # ended meanwhile: stop, with a checkpoint
    resume_run(store, run.id)
    assert store.get_run(run.id).worker_token is None  # resumed: its last worker holds it no more
    assert store.claim_run(run.id, host=paths.host(), limit=1)
    second = store.get_run(run.id).worker_token
    assert second not in (None, first)
    was = store.get_run(run.id).heartbeat_at
    time.sleep(0.01)
    assert store.beat(run.id, first) == Beat(stop=True, taken=True)
    assert store.get_run(run.id).heartbeat_at == was  # not the other worker's sign of life
    assert not store.mark_started(run.id, device="cpu", token=first)  # the frozen worker wakes: refused
    assert store.mark_started(run.id, device="cpu", token=second)
    assert not store.report_progress(run.id, [(1, 0.1, "train/loss", 1.0, 0.0)], 1, token=first)
    assert store.report_progress(run.id, [(1, 0.1, "train/loss", 2.0, 0.0)], 1, token=second)
    assert [r[4] for r in store.metrics(run.id)] == [2.0]
    assert store.request_cancel(run.id) and store.beat(run.id, second) == Beat(stop=True, taken=False)
    assert store.adopt(run.id) is None  # a worker given no token (in-process) cannot take a run a start holds ...
    queued = store.create_run("vit", {})
    adopted = store.adopt(queued.id)  # ... only a queued one (or a running one nobody holds)
    assert adopted and not store.beat(queued.id, adopted).taken
    store.transition(run.id, RunStatus.CANCELLED, only_from=[RunStatus.RUNNING])
    assert store.adopt(run.id) is None  # ended: nothing to take


def test_a_run_deleted_for_good_never_gives_its_id_to_a_new_run(store: Store) -> None:
    """Its id names it in exported model cards, logs and users' scripts: SQLite gave the highest
    id again once its row was gone."""
    ids = [store.create_run("vit", {}).id for _ in range(3)]
    store.delete_run(ids[2])
    store.delete_run(ids[1])
    assert store.create_run("vit", {}).id == ids[2] + 1
    store.delete_run(ids[0])  # a lower one: the highest used stays
    assert store.create_run("vit", {}).id == ids[2] + 2
