"""Swin and MobileViT end to end: tiny runs on the built-in data learn (beat chance), export to
files plain timm and onnxruntime load, and serve as DeiT teachers."""

from pathlib import Path

import pytest

from tests.export.roundtrip import reload_and_compare
from workbench.config import ConfigError
from workbench.engine.execute import execute
from workbench.export.exporter import export_run
from workbench.jobs import create_run
from workbench.methods import make_config
from workbench.store import RunStatus, Store

pytestmark = pytest.mark.slow

CHANCE = 0.1  # ten balanced classes; 1000 validation images put 0.15 five standard deviations above it


@pytest.mark.parametrize(("method", "overrides"), [
    ("swin", ["max_steps=150"]),
    ("cnn", ["arch=mobilevit_xxs", "max_steps=100"]),
])
def test_backbone_learns_and_exports(store: Store, tmp_path: Path, method: str, overrides: list[str]) -> None:
    run = create_run(store, method, preset="tiny", overrides=[*overrides, "eval_every=1000"])
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    top1 = store.get_run(run.id).summary["val/top1"]
    assert top1 > CHANCE + 0.05, f"{method} {overrides}: top-1 {top1:.3f} is no better than chance"

    results = export_run(store, run.id, tmp_path / "out", log=lambda _: None)
    assert all(diff <= 1e-4 for diff in results.values()), results
    expected, loaded = reload_and_compare(store, run.id, tmp_path / "out", tmp_path)
    assert expected.shape == (3, 10) and loaded["label_names"][0] == "circle"

    student = create_run(store, "deit", preset="tiny", overrides=["max_steps=4", "eval_every=4"],
                         parents={"teacher": run.id})
    assert execute(store, student.id, log=lambda _: None) == RunStatus.FINISHED
    assert store.get_run(student.id).summary["val/teacher_top1"] == pytest.approx(top1)


def test_swin_window_must_tile_every_stage() -> None:
    make_config("swin", "tiny", ["window_size=2"])  # 8x8 then 4x4 tokens: 2 tiles both
    with pytest.raises(ConfigError, match=r"window_size: window 3 does not tile the 8x8 token grid of stage 1; "
                                          r"choose one of \[2, 4\]"):
        make_config("swin", "tiny", ["window_size=3"])
    with pytest.raises(ConfigError, match="window 4 does not tile the 6x6 token grid of stage 2"):
        make_config("swin", "tiny", ["image_size=48", "window_size=4"])
    with pytest.raises(ConfigError, match="depths: 5 stages halve the 8x8 token grid 4 times"):
        make_config("swin", "tiny", ["depths=1,1,1,1,1", "heads=1,1,1,1,1"])
    with pytest.raises(ConfigError, match="heads: 2 head counts for 3 stages"):
        make_config("swin", "tiny", ["depths=1,1,1"])
