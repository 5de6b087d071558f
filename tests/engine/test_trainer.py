"""The training loop, in-process on tiny runs: reporting, checkpoints, stop, resume."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import wait_for
from tests.data.test_user_datasets import write_folder
from workbench import paths
from workbench.data import DataInfo
from workbench.engine.checkpoint import BEST, Checkpoints
from workbench.engine.execute import Heartbeat, StopFlag, execute
from workbench.engine.trainer import Training, train
from workbench.errors import RunEnded, WorkbenchError
from workbench.jobs import create_run, resume_run
from workbench.methods import get_method, make_config
from workbench.store import RunStatus, Store

FAST = ["max_steps=30", "eval_every=10", "checkpoint_every=10", "log_every=5", "batch_size=32"]


class Crash(Exception):
    pass


def _quiet(_: str) -> None:
    pass


def test_train_reports_metrics_images_and_keeps_two_checkpoints(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    assert train(store, run.id, log=_quiet) == RunStatus.FINISHED
    row = store.get_run(run.id)
    assert (row.step, row.total_steps, row.device) == (30, 30, "cpu")
    assert row.environment["batches from"] == "the decoded cache (memory-mapped), a batch gathered in the training process"
    assert set(row.results) == {"params", "val/loss", "val/top1"}
    info = DataInfo([str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3, 32)
    built = get_method("vit")(make_config("vit", "tiny"), info).build()
    assert row.summary["params"] == sum(p.numel() for p in built.parameters())
    keys = set(store.metric_keys(run.id))
    assert {"train/loss", "train/top1", "train/lr", "train/images_per_s", "train/data_wait", "val/loss",
            "val/top1"} <= keys
    assert all(0 <= v <= 1 for *_, v, _ in store.metrics(run.id, key="train/data_wait"))
    assert [r[1] for r in store.metrics(run.id, key="val/top1")] == [10, 20, 30]
    assert [r[1] for r in store.metrics(run.id, key="train/loss")] == [5, 10, 15, 20, 25, 30]
    assert [a.step for a in store.artifacts(run.id, "checkpoint")] == [20, 30]
    (best,) = store.artifacts(run.id, "best")  # the best evaluation's weights, beside the last two
    top1 = store.metrics(run.id, key="val/top1")
    assert best.step == max(top1, key=lambda r: (r[4], -r[1]))[1]
    assert sorted(p.name for p in (Path(store.home) / "runs" / f"{run.id:06d}" / "checkpoints").iterdir()) == \
        sorted([f"best-{best.step:08d}.pt", "step-00000020.pt", "step-00000030.pt"])
    images = store.artifacts(run.id, "image", name="predictions")
    assert [a.step for a in images] == [10, 20, 30]
    with Image.open(store.abspath(images[-1])) as img:
        alpha = np.asarray(img)[..., 3]
        assert img.mode == "RGBA" and img.width > 200  # a figure: its pictures opaque on transparent paper
        assert (alpha == 255).any() and (alpha == 0).any()


def test_stop_flag_checkpoints_and_reports_cancelled(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    stop = StopFlag()

    def log(message: str) -> None:
        if message.startswith("step 10/"):
            stop.request()

    assert train(store, run.id, stop, log=log) == RunStatus.CANCELLED
    assert store.latest_artifact(run.id, "checkpoint").step == 10
    assert store.get_run(run.id).step == 10


def _taken_at_step_10(store: Store, run_id: int, said: list[str], then: Exception | None = None):
    """A log that, at the run's evaluation at step 10, starts the run again elsewhere as a resume
    would (another token, an older step), then raises `then` if given."""
    def log(message: str) -> None:
        said.append(message)
        if message.startswith("step 10/"):
            store.update_run(run_id, worker_token="another start", pid=os.getpid() + 1, step=3)
            if then is not None:
                raise then
    return log


def test_a_run_taken_from_its_worker_gets_nothing_more_from_it(store: Store) -> None:
    """A run judged gone and started again by another worker while this one trained (its machine
    suspended, or cut off from the database): this worker's next write finds it out and it stops,
    writing no metric, checkpoint or end over the other worker's run."""
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    said: list[str] = []
    assert execute(store, run.id, log=_taken_at_step_10(store, run.id, said)) == RunStatus.RUNNING
    row = store.get_run(run.id)
    assert (row.status, row.pid, row.step, row.worker_token) == (RunStatus.RUNNING, os.getpid() + 1, 3,
                                                                 "another start")
    assert max(r[1] for r in store.metrics(run.id)) == 10 and store.latest_artifact(run.id, "checkpoint") is None
    assert store.latest_artifact(run.id, BEST) is None  # its best of step 10, written after the take, not placed
    assert not list(paths.checkpoint_dir(run.id).glob("*.pt*"))
    assert said[-1].startswith(f"run {run.id} is no longer this worker's (pid {os.getpid()} on ")
    assert said[-1].endswith(f"it is running with pid {os.getpid() + 1} on {row.host}; stopped at step 10, "
                             f"writing nothing more")


def test_a_taken_worker_that_fails_records_no_failure_over_the_runs_next_start(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    taken = _taken_at_step_10(store, run.id, [], then=RuntimeError("CUDA error: an illegal memory access"))
    assert execute(store, run.id, log=taken) == RunStatus.RUNNING
    row = store.get_run(run.id)
    assert (row.status, row.error, row.worker_token) == (RunStatus.RUNNING, None, "another start")


def test_a_worker_frozen_while_it_started_deletes_nothing_of_the_runs_next_start(store: Store) -> None:
    """Judged gone while it loaded its data, its run resumed and trained elsewhere: when it wakes,
    its resume must not drop the other worker's metrics and checkpoints as its own crashed attempt's."""
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    token = store.adopt(run.id)
    training = Training(store, run.id, log=lambda _: None, token=token)  # started: it holds the run ...
    store.update_run(run.id, worker_token="another start")  # ... frozen; the run is claimed again, and trains
    store.add_metrics(run.id, [(s, s / 10, "train/loss", 1.0, 0.0) for s in range(1, 6)])
    training.resume()
    assert len(store.metrics(run.id)) == 5 and training.stop.lost and training.stop.requested
    assert not training.loop() and len(store.metrics(run.id)) == 5  # one step, then the stop: nothing written
    with pytest.raises(RunEnded):
        training.finish(False)
    assert len(store.metrics(run.id)) == 5 and store.latest_artifact(run.id, "checkpoint") is None


def test_resume_after_a_crash_matches_an_uninterrupted_run(store: Store) -> None:
    reference = create_run(store, "vit", preset="tiny", overrides=FAST)
    train(store, reference.id, log=_quiet)

    run = create_run(store, "vit", preset="tiny", overrides=FAST)

    def crash_at_20(message: str) -> None:
        if message.startswith("step 20/"):
            raise Crash  # dies like a killed worker, right after step 20's evaluation
    with pytest.raises(Crash):
        train(store, run.id, log=crash_at_20)
    assert store.latest_artifact(run.id, "checkpoint").step == 10  # step 20's was never written
    store.update_run(run.id, status=RunStatus.INTERRUPTED)  # as the runner finds it
    resume_run(store, run.id)  # queued again: a worker trains only a queued or running run

    assert train(store, run.id, log=_quiet) == RunStatus.FINISHED
    steps = [r[1] for r in store.metrics(run.id, key="train/loss")]
    assert steps == [5, 10, 15, 20, 25, 30]  # rows after the checkpoint were dropped, then rewritten
    timing = {"train/images_per_s", "train/data_wait"}  # wall-clock measurements, never repeatable
    kept = lambda k: k not in timing and not k.startswith("sys/")  # noqa: E731 - sys/: the machine's readings
    ours = {k: v for k, (_, v) in store.last_metrics(run.id).items() if kept(k)}
    theirs = {k: v for k, (_, v) in store.last_metrics(reference.id).items() if kept(k)}
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)


def test_two_runs_of_one_seed_augment_alike(store: Store) -> None:
    """timm's Mixup draws from numpy's global generator: the run's seed seeds it too, so the second
    run (whose process the first has drawn from) trains alike. RandAugment, seeded by each batch's
    images, augments alike in the training process and in a loader process."""
    recipe = ["max_steps=10", "eval_every=10", "log_every=2", "batch_size=16", "augment=randaugment", "mixup=0.8",
              "seed=5"]
    losses = []
    for workers in (0, 1):
        run = create_run(store, "vit", preset="tiny", overrides=[*recipe, f"num_workers={workers}"])
        assert train(store, run.id, log=_quiet) == RunStatus.FINISHED
        losses.append([r[4] for r in store.metrics(run.id, key="train/loss")])
    assert len(losses[0]) == 5 and losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=FAST)
    train(store, run.id, log=_quiet)
    ckpts = Checkpoints(store, run.id)
    newest = store.latest_artifact(run.id, "checkpoint")
    store.abspath(newest).write_bytes(b"torn write")
    state, art = ckpts.latest_readable()
    assert art.step == 20 and state["step"] == 20
    store.abspath(art).unlink()
    assert ckpts.latest_readable() is None


def test_unavailable_device_is_refused_at_submit_and_fails_clearly_in_a_worker(store: Store) -> None:
    with pytest.raises(WorkbenchError, match="device: cuda:63 is not on this machine"):
        create_run(store, "vit", preset="tiny", overrides=["device=cuda:63"])
    assert store.list_runs() == []
    # a run made where that GPU exists (another machine sharing the store) fails clearly here
    run = store.create_run("vit", make_config("vit", "tiny", {"device": "cuda:63"}).to_dict())
    with pytest.raises(WorkbenchError, match="cuda:63 was asked for"):
        train(store, run.id, log=_quiet)


def test_resume_past_a_corrupt_checkpoint_replaces_it(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=FAST)

    def crash_at_30(message: str) -> None:
        if message.startswith("step 30/"):
            raise Crash
    with pytest.raises(Crash):
        train(store, run.id, log=crash_at_30)
    newest = store.latest_artifact(run.id, "checkpoint")
    assert newest.step == 20
    store.abspath(newest).write_bytes(b"\0" * 100)  # torn by a full disk, say
    store.transition(run.id, RunStatus.INTERRUPTED, only_from=[RunStatus.RUNNING])  # as its runner finds it
    resume_run(store, run.id)
    assert train(store, run.id, log=_quiet) == RunStatus.FINISHED  # restarts from step 10
    kept = store.artifacts(run.id, "checkpoint")
    assert [a.step for a in kept] == [20, 30]
    for art in kept:
        assert store.abspath(art).stat().st_size > 1000  # rewritten, not the torn file


def test_compiled_run_trains_like_an_eager_one(store: Store) -> None:
    eager = create_run(store, "vit", preset="tiny", overrides=["max_steps=10", "eval_every=10", "augment=none"])
    compiled = create_run(store, "vit", preset="tiny",
                          overrides=["max_steps=10", "eval_every=10", "augment=none", "compile=true"])
    for run in (eager, compiled):
        assert train(store, run.id, log=_quiet) == RunStatus.FINISHED
    ours, theirs = store.get_run(compiled.id).summary, store.get_run(eager.id).summary
    assert ours["val/loss"] == pytest.approx(theirs["val/loss"], rel=1e-3)
    state, _ = Checkpoints(store, compiled.id).latest_readable()
    plain = get_method("vit")(make_config("vit", "tiny"), DataInfo(**state["data"])).build()
    plain.load_state_dict(state["model"])  # a compiled run's checkpoint loads into a plain model


def test_channels_last_only_for_convolutional_networks_on_gpus() -> None:
    from workbench.engine.device import wants_channels_last

    info = DataInfo([str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3, 32)
    cnn = get_method("cnn")(make_config("cnn", "tiny"), info).build()
    vit = get_method("vit")(make_config("vit", "tiny"), info).build()
    gpu = torch.device("cuda", 0)  # a device object; no GPU is needed to ask
    assert wants_channels_last(cnn, gpu)
    assert not wants_channels_last(vit, gpu)  # only its patch embedding convolves
    assert not wants_channels_last(cnn, torch.device("cpu"))


def test_validation_reads_through_the_same_loader_processes_at_every_evaluation(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run decoding its files in loader processes evaluates through processes started once (they
    were started again for every evaluation: twice each time with EMA weights)."""
    from workbench.data import registry
    from workbench.data.files import FileDataset
    from workbench.data.loading import load_data

    root = tmp_path / "photos"
    write_folder(root)
    registry.register(store, "photos", "imagefolder", root)
    monkeypatch.setattr(registry, "CACHE_LIMIT_BYTES", 0)  # read from its files
    reads, read = tmp_path / "reads", FileDataset.__getitems__

    def noted(self: FileDataset, indices: list[int]) -> object:  # forked into the loader's processes
        with reads.open("a") as out:
            out.write(f"{len(self)} {os.getpid()}\n")
        return read(self, indices)

    monkeypatch.setattr(FileDataset, "__getitems__", noted)
    overrides = ["dataset=photos", "image_size=24", "num_workers=1", "ema=true", "batch_size=8", "max_steps=9",
                 "eval_every=3", "checkpoint_every=9"]
    run = create_run(store, "vit", preset="tiny", overrides=overrides)
    assert train(store, run.id, log=_quiet) == RunStatus.FINISHED, store.get_run(run.id).error
    val = len(load_data(make_config("vit", "tiny", overrides), store).val)
    lines = [tuple(map(int, line.split())) for line in reads.read_text().splitlines()]
    by_loader = [pid for n, pid in lines if n == val and pid != os.getpid()]  # not the snapshots' batch
    assert len(by_loader) >= 6 * -(-val // 8)  # 3 evaluations of the weights and of their EMA
    assert len(set(by_loader)) == 1
    assert store.get_run(run.id).environment["batches from"] == ("the files, decoded by Pillow in 1 loader processes "
                                                                 "(decode=loader)")


def test_the_heartbeat_stops_the_loop_with_a_checkpoint_or_writing_nothing(store: Store) -> None:
    """A run ended by someone else while its worker trains (a cancel's grace run out) is still the
    worker's to stop with a checkpoint; a run another start holds is not its to write to at all."""
    run = create_run(store, "vit")
    token = store.adopt(run.id)
    stop, said = StopFlag(), []
    with Heartbeat(store, run.id, token, stop, said.append, every=0.02):
        time.sleep(0.1)
        assert not stop.requested
        store.update_run(run.id, status=RunStatus.CANCELLED)
        wait_for(lambda: stop.requested, timeout=10, interval=0.01)
        assert stop.lost is None
        store.update_run(run.id, worker_token="another start")
        wait_for(lambda: stop.lost is not None, timeout=10, interval=0.01)
    assert said[-1].startswith(f"run {run.id} is no longer this worker's") and "writing nothing more" in said[-1]


def test_a_taken_runs_summary_images_and_report_get_nothing_from_its_last_worker(store: Store) -> None:
    """The writes between two held ones (the evaluation's summary, snapshots, the end's report and
    warnings) hold to the worker's start too."""
    import numpy as np

    from workbench.engine.reporter import Reporter

    run = create_run(store, "vit", preset="tiny")
    token = store.adopt(run.id)
    reporter = Reporter(store, run.id, token=token)
    reporter.summary({"val/top1": 0.5})
    assert store.get_run(run.id).summary["val/top1"] == 0.5 and reporter.lost is None
    store.update_run(run.id, worker_token="another start")
    reporter.images(10, {"samples": np.zeros((4, 4, 3), np.uint8)})
    assert reporter.lost and reporter.lost.startswith(f"run {run.id} is no longer this worker's")
    reporter.summary({"val/top1": 0.9})
    reporter.warn("from the last worker")
    reporter.report(10, "vit", {"x": 1})
    row = store.get_run(run.id)
    assert row.summary["val/top1"] == 0.5 and row.warnings == []
    assert store.artifacts(run.id, "image") == [] and store.artifacts(run.id, "report") == []
    assert not (paths.run_dir(run.id) / "vit-report.json").exists()
