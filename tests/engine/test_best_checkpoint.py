"""The best checkpoint: kept beside the last two by the run's best_metric, exported by default,
and the export says which weights it holds."""

import pytest
import torch
from safetensors.torch import load_file

from workbench.engine.checkpoint import load_trained
from workbench.engine.execute import execute
from workbench.errors import ConfigError
from workbench.export.exporter import export_run
from workbench.jobs import create_run
from workbench.methods import make_config
from workbench.store import Store

EVERY_STEP = ["max_steps=6", "eval_every=1", "checkpoint_every=3", "warmup_epochs=0"]


def _finished(store: Store, *overrides: str) -> int:
    run = create_run(store, "vit", preset="tiny", overrides=[*EVERY_STEP, *overrides])
    assert execute(store, run.id, log=lambda _: None) == "finished"
    return run.id


def _series(store: Store, run_id: int, key: str) -> list[tuple[int, float]]:
    return [(row[1], row[4]) for row in store.metrics(run_id, key=key)]


def test_the_best_evaluation_is_kept_and_exported(store: Store, tmp_path) -> None:
    run_id = _finished(store)
    series = _series(store, run_id, "val/top1")
    assert [step for step, _ in series] == [1, 2, 3, 4, 5, 6]
    peak_step, peak = max(series, key=lambda sv: (sv[1], -sv[0]))  # the first step that reached the maximum
    (best,) = store.artifacts(run_id, "best")  # one file, replaced as the run improved
    assert (best.step, best.meta) == (peak_step, {"metric": "val/top1", "value": peak})
    assert len(list(store.abspath(best).parent.glob("best-*.pt"))) == 1

    export_run(store, run_id, tmp_path / "out", ["safetensors"], log=lambda _: None)  # best is the default
    exported = load_file(tmp_path / "out" / "model.safetensors")
    kept = torch.load(store.abspath(best), weights_only=True)["model"]
    assert all(torch.equal(exported[k], v) for k, v in kept.items())
    assert f"weights: best: val/top1 {peak:.4g} at step {peak_step}" in (tmp_path / "out" / "README.md").read_text()
    assert store.artifacts(run_id, "export")[-1].meta["weights"].startswith("best:")


def test_a_metric_that_peaks_early_exports_the_early_weights_not_the_last(store: Store) -> None:
    # the validation loss is highest at the first evaluation: the best by max:val/loss is step 1 of 4
    run_id = _finished(store, "best_metric=max:val/loss", "lr=0.003", "max_steps=4")
    series = _series(store, run_id, "val/loss")
    assert max(series, key=lambda sv: sv[1])[0] == 1
    best, last = load_trained(store, run_id, weights="best"), load_trained(store, run_id, weights="last")
    assert (best.step, last.step) == (1, 4) and best.weights.startswith("best: val/loss")
    assert not torch.equal(best.model.head.weight, last.model.head.weight)


def test_runs_without_a_best_checkpoint_export_their_last_weights_and_say_so(store: Store) -> None:
    run_id = _finished(store, "max_steps=2", "eval_every=2", "checkpoint_every=2")
    for art in store.artifacts(run_id, "best"):  # as a run from before best checkpoints were kept
        store.abspath(art).unlink()
    trained = load_trained(store, run_id, weights="best")
    assert trained.step == 2 and trained.weights == "last: step 2 (the run kept no best checkpoint)"


def test_best_metric_must_name_a_validation_metric() -> None:
    assert make_config("vit", "tiny").best_rule() == ("val/top1", True)
    assert make_config("mae", "tiny").best_rule() == ("val/loss", False)
    assert make_config("vit", "tiny", ["best_metric=min:val/top1"]).best_rule() == ("val/top1", False)
    with pytest.raises(ConfigError, match="not a validation metric"):
        make_config("vit", "tiny", ["best_metric=train/loss"])
    with pytest.raises(ConfigError, match="ema is off"):
        make_config("vit", "tiny", ["best_metric=val_ema/top1"])
