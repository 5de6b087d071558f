"""Data-parallel training on the CPU: a run with nproc=2 goes through a real worker that becomes
torchrun with two gloo ranks; it ends with the same weights (so the same validation metrics) as
the same run in one process, and only rank 0 writes to the store."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from tests.conftest import wait_for
from workbench import paths
from workbench.config import ConfigError
from workbench.engine.checkpoint import Checkpoints
from workbench.jobs import create_run
from workbench.jobs.processes import is_worker_alive, log_path
from workbench.jobs.runner import Runner, resume_run
from workbench.methods import make_config
from workbench.store import RunStatus, Store
from workbench.studies import scheduler

pytestmark = pytest.mark.slow

SAME = ["max_steps=30", "eval_every=15", "log_every=10", "checkpoint_every=15", "augment=none"]


def test_two_gloo_processes_accumulating_train_like_one(store: Store) -> None:
    """Two ranks, each summing two batches of 16 before the all-reduce: one step of 64, as one process."""
    single = create_run(store, "vit", preset="tiny", overrides=SAME)
    double = create_run(store, "vit", preset="tiny", overrides=[*SAME, "nproc=2", "accum_steps=2"])
    store.set_max_concurrent(1)  # one after the other
    runner = Runner(store)
    for run in (single, double):
        assert scheduler.wait_for(store, runner, run.id, timeout=300) == RunStatus.FINISHED, store.get_run(run.id).error

    log = log_path(double.id).read_text()
    assert "2 processes through torchrun" in log and "2 processes, 32 images each per step" in log
    assert "2 batches of 16 accumulated per step" in log
    assert log.count(f"run {double.id} finished") == 1  # rank 1 stays quiet
    steps = [r[1] for r in store.metrics(double.id, key="train/loss")]
    assert steps == [10, 15, 20, 30] == [r[1] for r in store.metrics(single.id, key="train/loss")]  # one writer
    assert [r[1] for r in store.metrics(double.id, key="val/loss")] == [15, 30]
    ours, theirs = store.get_run(double.id).summary, store.get_run(single.id).summary
    assert ours["val/loss"] == pytest.approx(theirs["val/loss"], rel=1e-4)  # averaged gradients = one big batch
    assert ours["val/top1"] == pytest.approx(theirs["val/top1"], abs=2e-3)
    state, art = Checkpoints(store, double.id).latest_readable()
    assert art.step == 30 and state["step"] == 30
    assert store.get_run(double.id).device == "cpu x2"


def test_two_processes_distil_like_one_with_the_teacher_outside_ddp(store: Store) -> None:
    """DeiT under DDP: both heads train inside the wrapped step, the frozen teacher stays out of the
    reducer, and two ranks end where one process with the whole batch does."""
    teacher = create_run(store, "cnn", preset="tiny", overrides=["max_steps=10", "eval_every=10", "augment=none"])
    runner = Runner(store)
    assert scheduler.wait_for(store, runner, teacher.id, timeout=300) == RunStatus.FINISHED
    short = ["max_steps=12", "eval_every=12", "log_every=6", "checkpoint_every=12", "augment=none"]
    single = create_run(store, "deit", preset="tiny", overrides=short, parents={"teacher": teacher.id})
    double = create_run(store, "deit", preset="tiny", overrides=[*short, "nproc=2"], parents={"teacher": teacher.id})
    store.set_max_concurrent(1)
    for run in (single, double):
        assert scheduler.wait_for(store, runner, run.id, timeout=300) == RunStatus.FINISHED, store.get_run(run.id).error
    ours, theirs = (Checkpoints(store, r.id).latest_readable()[0]["model"] for r in (double, single))
    trained = [k for k in theirs if not k.startswith("teacher.")]
    assert trained and all(k in ours for k in trained)
    worst = max(float((ours[k].float() - theirs[k].float()).abs().max()) for k in trained)
    assert worst < 1e-4, f"weights differ by up to {worst:g} after 12 steps"
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs if k.startswith("teacher."))  # never trained


def test_two_processes_mask_and_train_mae_like_one(store: Store) -> None:
    """MAE under DDP: each rank masks its own images as one process with the whole batch masks them
    (the masks of a step are drawn for the whole batch from (seed, step, draw), each rank keeping its
    rows), so two ranks end with one process's weights; ranks drawing their own masks would not."""
    short = ["max_steps=12", "eval_every=12", "log_every=6", "checkpoint_every=12", "augment=none", "drop_path=0"]
    single = create_run(store, "mae", preset="tiny", overrides=short)
    double = create_run(store, "mae", preset="tiny", overrides=[*short, "nproc=2"])
    store.set_max_concurrent(1)
    runner = Runner(store)
    for run in (single, double):
        assert scheduler.wait_for(store, runner, run.id, timeout=300) == RunStatus.FINISHED, store.get_run(run.id).error
    ours, theirs = (Checkpoints(store, r.id).latest_readable()[0]["model"] for r in (double, single))
    worst = max(float((ours[k].float() - theirs[k].float()).abs().max()) for k in theirs)
    assert worst < 1e-4, f"weights differ by up to {worst:g} after 12 steps"
    assert store.get_run(double.id).summary["val/loss"] == pytest.approx(store.get_run(single.id).summary["val/loss"],
                                                                           rel=1e-4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_machines_meet_by_c10d_rendezvous_and_train_one_run(store: Store) -> None:
    """nnodes=2 on 127.0.0.1: the run's worker (the first machine) and `workbench join` (the second)
    are two torchrun agents with one process each; they meet by c10d rendezvous and train the run as
    two ranks, ending where one process with the whole batch does."""
    short = ["max_steps=12", "eval_every=12", "log_every=6", "checkpoint_every=12", "augment=none"]
    single = create_run(store, "vit", preset="tiny", overrides=short)
    double = create_run(store, "vit", preset="tiny",
                        overrides=[*short, "nnodes=2", f"rdzv_endpoint=127.0.0.1:{_free_port()}"])
    store.set_max_concurrent(1)
    runner = Runner(store)
    assert scheduler.wait_for(store, runner, single.id, timeout=300) == RunStatus.FINISHED
    scheduler.tick(store, runner)  # (or the single run's worker started it as it ended)
    wait_for(lambda: store.get_run(double.id).status == RunStatus.RUNNING)  # its torchrun waits for the second
    join = subprocess.Popen([sys.executable, "-m", "workbench.cli", "join", str(double.id)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert scheduler.wait_for(store, runner, double.id, timeout=300) == RunStatus.FINISHED, \
            store.get_run(double.id).error
        out, _ = join.communicate(timeout=120)
    finally:
        join.kill()
    assert join.returncode == 0, out[-3000:]
    assert "1 processes through torchrun on each of 2 machines meeting at 127.0.0.1:" in out
    assert store.get_run(double.id).device == "cpu x2"
    assert [r[1] for r in store.metrics(double.id, key="train/loss")] == [6, 12]  # one writer of two ranks
    ours, theirs = (Checkpoints(store, r.id).latest_readable()[0]["model"] for r in (double, single))
    worst = max(float((ours[k].float() - theirs[k].float()).abs().max()) for k in theirs)
    assert worst < 1e-4, f"weights differ by up to {worst:g} after 12 steps"


def test_a_machine_whose_rank_fails_before_training_fails_the_run_on_every_machine(store: Store,
                                                                                    tmp_path: Path) -> None:
    """The second machine cannot write its dataset cache: its rank fails while loading the data, and
    rank 0, which loaded its own, fails the run naming that rank and its error, at once (it waited
    for it in its next collective: on NCCL, until the 30-minute timeout)."""
    blocked = tmp_path / "datasets"
    blocked.write_text("a file where the second machine's dataset folder should be")
    run = create_run(store, "vit", preset="tiny",
                     overrides=["max_steps=4", "nnodes=2", f"rdzv_endpoint=127.0.0.1:{_free_port()}"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(run.id).status == RunStatus.RUNNING)
    join = subprocess.run([sys.executable, "-m", "workbench.cli", "join", str(run.id)], capture_output=True, text=True,
                          env=dict(os.environ, WORKBENCH_DATASETS=str(blocked)), timeout=300)
    assert scheduler.wait_for(store, runner, run.id, timeout=120) == RunStatus.FAILED
    error = store.get_run(run.id).error
    assert "rank 1 of 2 failed before training" in error and str(blocked) in error, error
    assert store.metrics(run.id) == []
    assert join.returncode != 0 and "FileExistsError" in join.stderr  # its own traceback, in its own log


def test_a_rank_failing_alone_before_training_stops_every_rank(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_prepare, args=(f"file://{tmp_path}/rendezvous", str(tmp_path)), nprocs=2)
    said = {rank: (tmp_path / f"rank{rank}").read_text() for rank in (0, 1)}
    assert said[0].startswith("WorkbenchError: rank 1 of 2 failed before training: no file at /nowhere")
    assert said[1] == "WorkbenchError: no file at /nowhere"  # its own error


def _prepare(rank: int, rendezvous: str, out: str) -> None:
    """One of two gloo ranks preparing a run: rank 1 alone fails (a file its machine lacks)."""
    import torch.distributed as dist

    from workbench.engine.distributed import Ranks, together
    from workbench.errors import WorkbenchError

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=2)
    try:
        with together(Ranks(rank, 2, rank), torch.device("cpu")):
            if rank == 1:
                raise WorkbenchError("no file at /nowhere")
        said = "went on"
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
    dist.destroy_process_group()
    Path(out, f"rank{rank}").write_text(said)


def test_a_second_machine_cannot_join_what_is_not_a_running_multi_machine_run(cli, store: Store) -> None:
    one = create_run(store, "vit", preset="tiny")
    two = create_run(store, "vit", preset="tiny", overrides=["nnodes=2", "rdzv_endpoint=127.0.0.1:29400"])
    for run, why in ((one, "trains on one machine (nnodes=1); there is nothing to join"),
                     (two, "is queued; join it once it runs")):
        done = cli("join", str(run.id))
        assert done.returncode != 0 and why in done.stderr
    with pytest.raises(ConfigError, match="2 machines need the host:port at which they meet"):
        make_config("vit", "tiny", ["nnodes=2"])
    with pytest.raises(ConfigError, match="4 processes cannot share batch_size 6 equally"):
        make_config("vit", "tiny", ["nnodes=2", "nproc=2", "batch_size=6", "rdzv_endpoint=a:1"])


def test_processes_must_share_the_batch_equally() -> None:
    with pytest.raises(ConfigError, match="nproc: 3 processes cannot share batch_size 64 equally"):
        make_config("vit", "tiny", ["nproc=3"])


def test_cancelling_a_two_process_run_checkpoints_and_stops_both(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["nproc=2", "eval_every=100000"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(run.id).step >= 20)
    pid = store.get_run(run.id).pid
    assert len(_workers_of(run.id)) == 3  # torchrun and its two ranks, found while they run
    assert runner.cancel(run.id, grace=30) == RunStatus.CANCELLED
    row = store.get_run(run.id)
    assert row.error is None and not is_worker_alive(pid, run.id)
    _, art = Checkpoints(store, run.id).latest_readable()
    assert art.step == row.step >= 20  # the step all ranks stopped after
    assert _workers_of(run.id) == []  # no rank left behind


def test_a_rank_killed_interrupts_the_run_naming_it_and_resume_finishes(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["nproc=2", "max_steps=40", "eval_every=20",
                                                             "checkpoint_every=10"])
    runner = Runner(store)
    scheduler.tick(store, runner)
    wait_for(lambda: store.get_run(run.id).step >= 15)
    rank0 = psutil.Process(store.get_run(run.id).pid)  # rank 0 records its pid; torchrun is its parent
    rank1 = next(p for p in rank0.parent().children() if p.environ().get("RANK") == "1")
    rank1.kill()
    assert scheduler.wait_for(store, runner, run.id, timeout=120) == RunStatus.INTERRUPTED
    error = store.get_run(run.id).error
    assert error.startswith("rank 1 of the 2 processes stopped") and f"workbench resume {run.id}" in error
    assert "Traceback" not in error
    store.set_max_concurrent(1)
    resume_run(store, run.id)
    assert scheduler.wait_for(store, runner, run.id, timeout=300) == RunStatus.FINISHED
    assert [r[1] for r in store.metrics(run.id, key="val/top1")] == [20, 40]


@pytest.mark.parametrize("given", ["a stale start", ""])
def test_a_run_rank_0_may_not_start_ends_every_rank_at_once_writing_nothing(store: Store, given: str) -> None:
    """Rank 0 finds its run held by another start, with a stale token or with none (a worker run by
    hand): every rank leaves together (no rank waits in a collective for a rank that left, which on
    NCCL lasts until the timeout), and nothing is written."""
    run = create_run(store, "vit", preset="tiny", overrides=["nproc=2"])
    token = store.claim_run(run.id, host="elsewhere", limit=5)  # another start's
    worker = subprocess.run([sys.executable, "-m", "workbench.worker", str(run.id)], capture_output=True, text=True,
                            env=dict(os.environ, WORKBENCH_WORKER_TOKEN=given), timeout=300)
    said = worker.stdout + worker.stderr
    assert worker.returncode == 0 and "Traceback" not in said, said
    assert "is held by another start" in said
    row = store.get_run(run.id)
    assert (row.status, row.host, row.pid, row.worker_token) == (RunStatus.RUNNING, "elsewhere", None, token)
    assert store.metrics(run.id) == []


def _workers_of(run_id: int) -> list[int]:
    """The pids of this test's worker processes of `run_id` (torchrun and its ranks): by their
    arguments and home, since a test running beside this one (pytest-xdist) has a run `run_id` too."""
    home = str(paths.home())
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.cmdline()[-3:] == ["-m", "workbench.worker", str(run_id)] \
                    and proc.environ().get("WORKBENCH_HOME") == home:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _vote(rank: int, rendezvous: str, out: str) -> None:
    """One of two gloo ranks voting after each of 6 steps; rank 1 asks to stop after step 3."""
    import torch.distributed as dist

    from workbench.engine.distributed import Ranks, StopVote

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=2)
    vote = StopVote(Ranks(rank, 2, rank), torch.device("cpu"))
    said = [vote(rank == 1 and step >= 3) for step in range(6)]
    vote.settle()
    dist.destroy_process_group()
    Path(out, f"rank{rank}").write_text(json.dumps(said))


def test_a_stop_asked_on_one_rank_is_agreed_by_both_one_step_later(tmp_path: Path) -> None:
    """The vote is read a step after it is cast, so no step waits for the last one's all-reduce."""
    torch.multiprocessing.spawn(_vote, args=(f"file://{tmp_path}/rendezvous", str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}").read_text()) == [False] * 4 + [True] * 2


def test_sync_bn_makes_every_batchnorm_synchronised_and_keeps_the_checkpoint_keys() -> None:
    from workbench.data import DataInfo
    from workbench.engine.distributed import sync_batchnorm
    from workbench.errors import WorkbenchError
    from workbench.methods import get_method

    cfg = make_config("cnn", "tiny")
    model = get_method("cnn")(cfg, DataInfo([str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3, 32)).build()
    keys = list(model.state_dict())
    batchnorms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    synced, count = sync_batchnorm(model, torch.device("cuda"))  # converting needs no GPU; training does
    assert count == batchnorms > 0 and list(synced.state_dict()) == keys
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules()) == count
    with pytest.raises(WorkbenchError, match="sync_bn needs GPUs"):
        sync_batchnorm(model, torch.device("cpu"))
    with pytest.raises(ConfigError, match="SyncBatchNorm runs on GPUs only"):
        make_config("cnn", "tiny", ["sync_bn=true", "device=cpu"])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_a_cnn_on_two_gpus_trains_with_synchronised_batchnorm(store: Store) -> None:
    run = create_run(store, "cnn", preset="tiny", overrides=["max_steps=6", "eval_every=6", "nproc=2", "sync_bn=true",
                                                             "device=cuda"])
    assert scheduler.wait_for(store, Runner(store), run.id, timeout=300) == RunStatus.FINISHED, store.get_run(run.id).error
    assert "BatchNorm layers take their statistics over all 2 processes" in log_path(run.id).read_text()


@pytest.mark.parametrize("sibling, here, words", [
    ({"RANK": "1"}, {"LOCAL_WORLD_SIZE": "2"}, ("0 to 1", 1)),  # torchrun: a machine's ranks in a row
    ({"SLURM_PROCID": "1"}, {"LOCAL_WORLD_SIZE": "2"}, ("0 to 1", 1)),  # Slurm's block distribution
    ({"SLURM_PROCID": "2"}, {"SLURM_GTIDS": "0,2"}, ("0 and 2", 2)),  # Slurm's cyclic: ranks 0 and 2 here
], ids=["torchrun", "slurm-block", "slurm-cyclic"])
def test_a_lost_peer_is_named_on_this_machine_and_said_to_be_elsewhere_otherwise(
        sibling: dict[str, str], here: dict[str, str], words: tuple[str, int]) -> None:
    """Rank 0 of 4, two per machine, after a collective failed: with its sibling (a child of the
    same launcher, its rank in torchrun's RANK or a Slurm task's SLURM_PROCID) alive, the peer that
    went was on the other machine; with it gone, it is the sibling. (All three ranks were named
    lost before, whatever happened; and under Slurm's cyclic distribution, ranks 0 and 1.)"""
    from workbench.engine.distributed import Ranks, lost_peers

    assert lost_peers(Ranks(0, 4, 0), ValueError("a bug")) == ""  # not a collective's failure
    check = ("from workbench.engine.distributed import Ranks, lost_peers; "
             "print(lost_peers(Ranks(0, 4, 0), RuntimeError('[gloo] Connection closed by peer')))")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "SLURM_PROCID", "SLURM_GTIDS", "LOCAL_WORLD_SIZE")}
    mine, sibling_rank = words
    sibling_process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={**env, **sibling})
    try:
        said = subprocess.run([sys.executable, "-c", check], env={**env, **here}, capture_output=True, text=True,
                              timeout=120)
        assert said.stdout.strip() == f"a process on another machine (this one's ranks, {mine} of 4, still run)", \
            said.stderr
    finally:
        sibling_process.kill()
        sibling_process.wait()
    said = subprocess.run([sys.executable, "-c", check], env={**env, **here}, capture_output=True, text=True,
                          timeout=120)
    assert said.stdout.strip() == f"rank {sibling_rank} of the 4 processes", said.stderr
