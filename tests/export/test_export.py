"""Export a tiny ViT classifier and a tiny MAE encoder in every format, and load them again in
a fresh Python that never imports the workbench."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.export.roundtrip import reload_and_compare
from workbench.engine.execute import execute
from workbench.errors import WorkbenchError
from workbench.export import CARD, FORMATS, exporter
from workbench.export.exporter import export_run
from workbench.jobs import create_run
from workbench.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export")]  # one module fixture


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_cache):
    """A finished tiny ViT (learned 1-D and 2-D position embeddings) and a finished tiny MAE in a
    home of their own."""
    home = tmp_path_factory.mktemp("export-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(home))
        patch.setenv("WORKBENCH_DATASETS", str(dataset_cache))
        store = Store()
        runs = {}
        for key, method, extra in (("vit", "vit", []), ("mae", "mae", []), ("vit-2d", "vit", ["pos_embed=learned-2d"])):
            run = create_run(store, method, preset="tiny", overrides=["max_steps=20", "eval_every=20", *extra])
            assert execute(store, run.id, log=lambda _: None) == "finished"
            runs[key] = run.id
        yield store, runs, home, patch


@pytest.mark.parametrize("method", ["vit", "mae"])
def test_every_format_reloads_without_the_workbench(trained, method: str, tmp_path: Path) -> None:
    store, runs, _, _ = trained
    run_id = runs[method]
    folder = tmp_path / "out"
    results = export_run(store, run_id, folder, log=lambda _: None)
    assert set(results) == set(FORMATS) and all(d <= 1e-4 for d in results.values())
    names = {p.name for p in folder.iterdir()}
    assert names == {"model.safetensors", "config.json", "model.onnx", "model.pt2", CARD}
    card = (folder / CARD).read_text()
    assert f"method `{method}`" in card and "local-dir:" in card and "Validation metrics" in card
    import torch

    assert "trained with: workbench 0.1.0" in card and f"torch {torch.__version__}" in card  # its environment
    from huggingface_hub import ModelCard

    hub = ModelCard(card).data  # the Hub's own parser reads the YAML header
    assert hub.library_name == "timm" and f"method-{method}" in hub.tags and hub.datasets == ["shapes"]
    assert str(tmp_path) not in card and str(Path.home()) not in card  # relative paths only
    if method == "vit":  # the best evaluation's accuracy, as model-index says it
        best = store.artifacts(run_id, "best")[-1]
        assert hub.eval_results[0].metric_value == round(best.meta["value"], 4) and "weights: best:" in card
    assert [a.name for a in store.artifacts(run_id, "export")][-3:] == list(FORMATS)

    config = json.loads((folder / "config.json").read_text())
    cfg = store.get_run(run_id).config
    assert config["architecture"] == "vit_tiny_patch16_224"  # the nearest size, not vit_base for a tiny model
    assert config["model_args"]["embed_dim"] == cfg["width"] and config["model_args"]["depth"] == cfg["depth"]
    params = store.get_run(run_id).summary.get("params")
    assert f"width {cfg['width']}, depth {cfg['depth']}" in config["architecture_note"]
    assert f"width {cfg['width']}, depth {cfg['depth']}" in card
    if method == "vit":  # the classifier is all the run trained
        assert f"{int(params):,} parameters" in config["architecture_note"]

    expected, loaded = reload_and_compare(store, run_id, folder, tmp_path)
    assert expected.shape == ((3, 10) if method == "vit" else (3, 64))  # classifier logits / encoder features
    assert len(loaded["mean"]) == 3 and config["pretrained_cfg"]["license"] == hub.license == "other"
    if method == "vit":  # an encoder exported alone has no classes to name
        assert loaded["label_names"][:2] == ["circle", "ring"]
    else:
        assert loaded["label_names"] is None and config["model_args"].get("num_classes", 0) == 0

    if method == "vit":  # again there, of other weights, one format: the card names no other export's files
        said: list[str] = []
        export_run(store, run_id, folder, ["safetensors"], overwrite=True, weights="last", log=said.append)
        assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", CARD}
        assert any("removed model.onnx, model.pt2" in line for line in said)
        assert "weights: last:" in (folder / CARD).read_text()
        assert [a.name for a in store.artifacts(run_id, "export") if a.meta["folder"] == str(folder)] == \
            ["safetensors"]


def test_learned_2d_position_embedding_exports_as_timms_pos_embed(trained, tmp_path: Path) -> None:
    """The X and Y tables of a learned-2d run become the [1, 1 + N, D] `pos_embed` of a plain timm ViT."""
    from safetensors.torch import load_file

    store, runs, _, _ = trained
    folder = tmp_path / "out"
    export_run(store, runs["vit-2d"], folder, log=lambda _: None)
    weights = load_file(folder / "model.safetensors")
    assert weights["pos_embed"].shape == (1, 1 + 64, 64) and not any("parametrizations" in k for k in weights)
    grid = weights["pos_embed"][0, 1:].reshape(8, 8, 64)
    assert torch.equal(grid[:1, :, :32].expand(8, -1, -1), grid[..., :32])  # every row of a column: the same X
    assert json.loads((folder / "config.json").read_text())["model_args"]["pos_embed"] == "learn"
    expected, loaded = reload_and_compare(store, runs["vit-2d"], folder, tmp_path)  # every format, 1e-4
    assert np.abs(np.array(loaded["safetensors"]) - expected).max() <= 1e-5


def test_bad_exports_fail_clearly_and_leave_nothing(trained, tmp_path: Path) -> None:
    store, runs, home, patch = trained
    queued = create_run(store, "vit", preset="tiny")
    with pytest.raises(WorkbenchError, match="is queued; only finished runs can be exported"):
        export_run(store, queued.id, tmp_path / "a", log=lambda _: None)
    assert not (tmp_path / "a").exists()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkbenchError, match="cannot write to"):
        export_run(store, runs["vit"], blocker / "out", ["pt2"], log=lambda _: None)

    target = tmp_path / "b"
    target.mkdir()
    (target / "model.pt2").write_text("keep me")
    with pytest.raises(WorkbenchError, match="already exists; overwrite"):
        export_run(store, runs["vit"], target, ["pt2"], log=lambda _: None)
    assert (target / "model.pt2").read_text() == "keep me"

    def broken(exported, folder):
        (folder / "model.onnx").write_bytes(b"half")
        raise WorkbenchError("the onnx export differs from the model")
    with patch.context() as inner:
        inner.setitem(exporter.WRITERS, "onnx", broken)
        with pytest.raises(WorkbenchError, match="differs"):
            export_run(store, runs["vit"], tmp_path / "c", ["pt2", "onnx"], log=lambda _: None)
    assert list((tmp_path / "c").iterdir()) == []  # neither the good pt2 nor the half onnx, no staging

    for art in store.artifacts(runs["mae"], "checkpoint") + store.artifacts(runs["mae"], "best"):
        store.abspath(art).unlink()
    with pytest.raises(WorkbenchError, match="no readable checkpoint"):
        export_run(store, runs["mae"], tmp_path / "d", log=lambda _: None)
    with pytest.raises(WorkbenchError, match="unknown export format"):
        export_run(store, runs["vit"], tmp_path / "e", ["tflite"], log=lambda _: None)


def test_export_dialog_runs_the_export_in_another_process(trained, qtbot, tmp_path: Path) -> None:
    from tests.ui.conftest import answer_next_box
    from workbench.ui.export_dialog import ExportDialog, weight_choices

    store, runs, _, _ = trained
    dialog = ExportDialog(weight_choices(store, runs["vit"]), runs["vit"], "tiny vit")
    qtbot.addWidget(dialog)
    dialog.boxes["onnx"].setChecked(False)
    dialog.boxes["safetensors"].setChecked(False)
    dialog.folder.setText(str(tmp_path / "gui"))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.output.toPlainText(), timeout=120_000)
    assert dialog.result is not None, dialog.output.toPlainText()
    assert (tmp_path / "gui" / "model.pt2").exists() and not (tmp_path / "gui" / "model.onnx").exists()
    assert "Written and verified" in dialog.output.toPlainText()
    seen = answer_next_box("Cancel")  # existing files: replaced only when the user says so
    assert not dialog.start() and "model.pt2" in seen[0]
    answer_next_box("Replace")
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=120_000)
    assert store.artifacts(runs["vit"], "export", name="pt2")


def test_push_offline_says_so_and_keeps_the_export(trained, monkeypatch, capsys, tmp_path: Path) -> None:
    from huggingface_hub import constants

    from workbench.cli import main

    store, runs, _, _ = trained
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: offline
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    code = main(["export", str(runs["vit"]), "--format", "safetensors", "--out", str(tmp_path / "x"), "--push", "me/x"])
    err = capsys.readouterr().err
    assert code != 0 and "cannot reach the Hub" in err and "nothing was pushed" in err
    assert {p.name for p in (tmp_path / "x").iterdir()} == {"model.safetensors", "config.json", CARD}
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["export", str(runs["vit"]), "--format", "safetensors", "--out", str(tmp_path / "y"),
                 "--push", "me/x"]) != 0
    assert "this machine is offline (HF_HUB_OFFLINE is set)" in capsys.readouterr().err
