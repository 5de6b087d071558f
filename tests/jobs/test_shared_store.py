"""A store shared by several hosts, on a real PostgreSQL server: a worker of "another host" (its
own WORKBENCH_HOST) is judged by its heartbeat alone and honours a cancel stored in the
database; schedulers on two hosts never make a study's member run twice nor break a host's
limit; `db migrate-to` copies a whole store there and back; run files live under a shared root."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import event, select

from tests.conftest import finish_queued_members, wait_for
from workbench import paths
from workbench.errors import StoreError, WorkbenchError
from workbench.jobs import Runner, cancel_run, create_run, reconcile, resume_run
from workbench.jobs.processes import log_path
from workbench.store import SCHEMA_VERSION, RunStatus, Store
from workbench.store.schema import Base
from workbench.store.transfer import TABLES, copy_store, counts
from workbench.studies import Stage, StudySpec, advance, create_study

pytestmark = pytest.mark.slow
OTHER = "node-7"  # the host identity of a worker on "another machine"
LONG = ["epochs=50", "log_every=2", "checkpoint_every=10"]


def _start_elsewhere(store: Store, monkeypatch: pytest.MonkeyPatch, run_id: int, host: str = OTHER) -> int:
    """Claim and launch a run's worker as `host` would; the desktop (this test) is this host
    again afterwards. Its pid, once it has trained a few steps."""
    monkeypatch.setenv("WORKBENCH_HOST", host)
    token = store.claim_run(run_id, host=host, limit=4)
    assert token
    Runner(store).launch(run_id, token)
    monkeypatch.delenv("WORKBENCH_HOST")
    started = store.get_run(run_id).step
    wait_for(lambda: store.get_run(run_id).step >= started + 4, timeout=180)
    run = store.get_run(run_id)
    assert run.host == host and run.heartbeat_at is not None and run.worker_token == token  # the claim's start
    return run.pid


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_killed_worker_on_another_host_is_interrupted_by_its_heartbeat_alone(
        store: Store, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store.set_heartbeat_timeout(15)
    run = create_run(store, "vit", preset="tiny", overrides=LONG)
    pid = _start_elsewhere(store, monkeypatch, run.id)
    first = store.get_run(run.id).heartbeat_at
    wait_for(lambda: store.get_run(run.id).heartbeat_at > first, timeout=30)  # it beats while it trains
    os.killpg(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert reconcile(store) == []  # its pid is gone here, but a run of another host is not judged by pids
    assert store.get_run(run.id).status == RunStatus.RUNNING
    wait_for(lambda: reconcile(store) == [run.id], timeout=60, interval=1)
    assert time.monotonic() - killed_at >= 10  # not before the timeout (15 s, less the last beat's age)
    lost = store.get_run(run.id)
    assert lost.status == RunStatus.INTERRUPTED
    assert f"no heartbeat from its worker on {OTHER}" in lost.error and "workbench resume" in lost.error


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_cancel_request_reaches_a_worker_on_another_host_through_the_store(
        store: Store, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=LONG)
    _start_elsewhere(store, monkeypatch, run.id)
    assert cancel_run(store, run.id) == RunStatus.RUNNING  # asked, not killed: it is "cancelling"
    assert store.get_run(run.id).cancel_requested_at is not None
    wait_for(lambda: store.get_run(run.id).status != RunStatus.RUNNING, timeout=60)
    stopped = store.get_run(run.id)
    assert stopped.status == RunStatus.CANCELLED and stopped.error is None  # it stopped itself, cleanly
    assert store.latest_artifact(run.id, "checkpoint").step == stopped.step  # and kept where it was
    assert "cancel requested through the store" in (paths.run_dir(run.id) / "worker.log").read_text()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_worker_judged_gone_while_frozen_writes_nothing_to_its_runs_next_start(
        store: Store, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine suspended (or cut off from the database) past the heartbeat timeout: its run is
    judged interrupted and resumed on another machine. When the first machine wakes, its worker
    stops at its next heartbeat, writing nothing (it trained on, then wrote its end over the
    other worker's run)."""
    store.set_heartbeat_timeout(15)
    run = create_run(store, "vit", preset="tiny", overrides=LONG)
    frozen = _start_elsewhere(store, monkeypatch, run.id)
    wait_for(lambda: store.latest_artifact(run.id, "checkpoint") is not None, timeout=120)  # a resume continues it
    os.killpg(frozen, signal.SIGSTOP)
    try:
        wait_for(lambda: reconcile(store) == [run.id], timeout=60, interval=1)
        resume_run(store, run.id)
        taker = _start_elsewhere(store, monkeypatch, run.id, host="node-8")
    finally:
        os.killpg(frozen, signal.SIGCONT)
    wait_for(lambda: _ended(frozen), timeout=30, interval=0.5)  # a heartbeat (5 s) and a step
    log = log_path(run.id).read_text()
    assert f"is no longer this worker's (pid {frozen} on {OTHER}): it is running with pid {taker} on node-8" in log
    assert re.search(r"; stopped at step \d+, writing nothing", log)
    now = store.get_run(run.id)
    assert (now.status, now.pid, now.host, now.error) == (RunStatus.RUNNING, taker, "node-8", None)
    step = now.step
    wait_for(lambda: store.get_run(run.id).step > step + 2, timeout=60)  # the run's worker trains on
    assert cancel_run(store, run.id) == RunStatus.RUNNING
    wait_for(lambda: store.get_run(run.id).status != RunStatus.RUNNING, timeout=60)
    stopped = store.get_run(run.id)
    assert stopped.status == RunStatus.CANCELLED and stopped.error is None  # its own clean stop, nobody else's
    assert store.latest_artifact(run.id, "checkpoint").step == stopped.step


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited; its parent has not waited
    except psutil.NoSuchProcess:
        return True


def _pipeline(points: list[dict], name: str) -> StudySpec:
    """MAE at each point, then a linear probe of each (two steps each: nothing here trains them)."""
    return StudySpec([Stage("first", "mae", {"max_steps": 2}, swept=True),
                      Stage("then", "finetune", {"max_steps": 2, "mode": "linear"}, parents={"encoder": "first"})],
                     ["mask_ratio"], points, parallel=2, name=name)


def _advance_as(url: str, host: str, study_id: int, rounds: int, out: multiprocessing.Queue) -> None:
    os.environ["WORKBENCH_HOST"] = host
    store = Store(url)
    made = []
    for _ in range(rounds):
        made += advance(store, study_id)
    out.put(made)


def _claim_as(url: str, host: str, limit: int, ids: list[int], start_at: float, out: multiprocessing.Queue) -> None:
    store = Store(url)
    store.max_concurrent()  # connected before the start
    time.sleep(max(0.0, start_at - time.time()))  # every scheduler starts claiming at the same moment
    out.put([i for i in ids if store.claim_run(i, host=host, limit=limit)])


def _race(target, args: list[tuple]) -> list[list[int]]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, out)) for a in args]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    return results


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_schedulers_on_two_hosts_never_make_a_member_run_twice(store: Store, backend: str) -> None:
    study = create_study(store, _pipeline([{"mask_ratio": round(0.1 + 0.05 * i, 2)} for i in range(16)], "race"))
    # the first stage done, not advanced: its 16 dependants are ready for whichever scheduler comes first
    finish_queued_members(store, study.id, lambda stage, point: {"val/loss": 0.5}, then_advance=False)
    made = _race(_advance_as, [(store.target, host, study.id, 3) for host in ("desk", OTHER)])
    members = store.study_members(study.id)
    assert len(made[0] + made[1]) == len({*made[0], *made[1]}) == 16  # each made by one scheduler only
    assert len(store.list_runs()) == 32 and len({m.run_id for m in members}) == 32  # one run per member
    assert all(m.state == "created" for m in members)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_concurrent_claims_keep_each_hosts_limit_and_each_run_once(store: Store, backend: str) -> None:
    ids = [store.create_run("vit", {}).id for _ in range(24)]
    start_at = time.time() + 5  # after the processes have started and connected
    orders = [random.Random(n).sample(ids, len(ids)) for n in range(5)]  # each scheduler tries them in its own order
    claimed = _race(_claim_as, [(store.target, host, 3, order, start_at)
                                for host, order in zip(("a", "a", "a", "b", "b"), orders)])
    flat = [i for got in claimed for i in got]
    assert len(flat) == len(set(flat)) == 6  # each run once; 3 per host though three schedulers raced on "a"
    hosts = [r.host for r in store.list_runs(status=RunStatus.RUNNING)]
    assert hosts.count("a") == 3 and hosts.count("b") == 3


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_claim_waits_for_a_slow_claim_of_another_scheduler(store: Store, backend: str) -> None:
    """A scheduler whose claim is slow to commit (a slow link) still holds the host's last slot:
    the other waits for it rather than counting the runs before it commits."""
    first, second = store.create_run("vit", {}), store.create_run("vit", {})
    slow = Store(store.target)
    event.listen(slow.engine, "commit", lambda _conn: time.sleep(1.5))  # this scheduler's commits lag
    results = {}
    thread = threading.Thread(target=lambda: results.update(slow=slow.claim_run(first.id, host="a", limit=1)))
    thread.start()
    time.sleep(0.5)  # its claim is made, not yet committed
    results["fast"] = store.claim_run(second.id, host="a", limit=1)
    thread.join()
    assert {k: bool(v) for k, v in results.items()} == {"slow": True, "fast": False}  # one slot, one run
    assert [r.id for r in store.list_runs(status=RunStatus.RUNNING)] == [first.id]


def _dump(store: Store) -> dict[str, list[dict]]:
    """Every row of every copied table, in id order (what must survive a copy unchanged)."""
    tables = Base.metadata.tables
    with store.engine.connect() as conn:
        return {name: [dict(r._mapping) for r in conn.execute(select(tables[name]).order_by(*tables[name].primary_key))]
                for name in TABLES}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_migrate_to_postgresql_and_back_keeps_every_row_and_a_study(store: Store, backend: str, pg_url: str,
                                                                    tmp_path: Path, cli) -> None:
    store.set_max_concurrent(3)
    study = create_study(store, _pipeline([{"mask_ratio": 0.5}, {"mask_ratio": 0.75}], "kept"))
    finish_queued_members(store, study.id, lambda stage, point: {"val/top1": point["mask_ratio"]})
    run = store.list_runs()[0]
    store.add_metrics(run.id, [(s, s / 10, "train/loss", 1 / (s + 1), 1000.0 + s) for s in range(50_000)])
    store.add_dataset("photos", "imagefolder", tmp_path / "photos", stats={"classes": ["a", "b"]})
    store.set_trashed([run.id], True)
    before = _dump(store)

    done = cli("db", "migrate-to", pg_url)
    assert done.returncode == 0, done.stderr
    assert "copied and checked" in done.stdout and "50" in done.stdout
    (tmp_path / "elsewhere").mkdir()
    beside = cli("db", "migrate-to", str(tmp_path / "elsewhere" / "copy.sqlite"))  # its own folder: another root
    assert beside.returncode == 0, beside.stderr
    assert beside.stdout.count("Point the workbench at the copy") == 1
    assert f"set WORKBENCH_ARTIFACTS={store.root} " in beside.stdout
    server = Store(pg_url)
    assert counts(server) == counts(store) and _dump(server) == before
    assert server.max_concurrent() == 3 and server.list_runs(trashed=True)[0].id == run.id
    assert [m.run_id for m in server.study_members(study.id)] == [m.run_id for m in store.study_members(study.id)]
    assert server.create_run("vit", {}).id == max(r["id"] for r in before["runs"]) + 1  # ids go on after the copy
    again = cli("db", "migrate-to", pg_url)
    assert again.returncode == 2 and "is not empty" in again.stderr  # never into a store that holds runs

    back = tmp_path / "back.sqlite"
    deleted = server.list_runs()[-1].id
    server.delete_run(deleted)  # its id is never given again, in the copy back too
    copied = copy_store(server, Store(back))
    meta = sorted(before["meta"] + [{"key": "run_ids_used", "value": str(deleted)}], key=lambda row: row["key"])
    assert copied["metrics"] == 50_000 and _dump(Store(back)) == {**before, "meta": meta}
    assert Store(back).create_run("vit", {}).id == deleted + 1
    assert _dump(store) == before  # the source, untouched


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_running_run_holds_back_a_copy(store: Store, backend: str, tmp_path: Path) -> None:
    run = store.create_run("vit", {})
    assert store.claim_run(run.id, host="x", limit=1)
    with pytest.raises(StoreError, match=f"run {run.id} of .* is running; wait for them"):
        copy_store(store, Store(tmp_path / "copy.sqlite"))


def test_run_files_live_under_a_shared_root_with_relative_paths(home: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "mnt" / "lab"
    shared.mkdir(parents=True)
    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(shared))
    store = Store()
    run = store.create_run("vit", {})
    folder = paths.run_dir(run.id)
    assert folder.parent.parent == shared
    (folder / "best.pt").write_bytes(b"w")
    art = store.add_artifact(run.id, "best", folder / "best.pt")
    assert art.path == f"runs/{run.id:06d}/best.pt"  # relative to the root, not to where it is mounted
    assert store.environment()["WORKBENCH_ARTIFACTS"] == str(shared)

    elsewhere = tmp_path / "Volumes" / "lab"  # another desktop mounts the same share at another path
    elsewhere.parent.mkdir()
    shutil.move(shared, elsewhere)
    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(elsewhere))
    desk = Store()
    assert desk.abspath(desk.latest_artifact(run.id, "best")).read_bytes() == b"w"

    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(tmp_path / "unmounted"))
    with pytest.raises(WorkbenchError, match="does not exist .*shared file system mounted"):
        Store()
    assert not (tmp_path / "unmounted").exists()  # never made: an unmounted share stays visible as such


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_cli_names_the_store_it_opened(cli, store: Store, backend: str, pg_url: str) -> None:
    shown = cli("--db", pg_url, "db", "info", "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["server"] and info["store"].startswith("the PostgreSQL store t_") and info["schema"] == SCHEMA_VERSION
    bad = cli("--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", "runs")
    assert bad.returncode == 2 and "cannot be reached" in bad.stderr and "Traceback" not in bad.stderr
