"""Starting a run from pretrained weights (`init`), with real files written here: timm's own
save_for_hf folder, a safetensors file, a .pth state dict, a pickle that needs code, another run."""

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from workbench.engine.execute import execute
from workbench.engine.trainer import Training
from workbench.errors import ConfigError, WorkbenchError
from workbench.jobs import create_run
from workbench.methods.start import source_shape
from workbench.store import Store

# the tiny preset's data (32 px, 10 classes) and a source of another shape: width 96, depth 3, 3 heads
SOURCE = dict(img_size=32, patch_size=4, embed_dim=96, depth=3, num_heads=3, mlp_ratio=2.0, num_classes=7)


class Opaque:  # a pickled object of this class needs code to load
    pass


def _source(**changes) -> torch.nn.Module:
    torch.manual_seed(11)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, **{**SOURCE, **changes}).eval()


def _started(store: Store, init: str, *overrides: str, method: str = "vit") -> Training:
    run = create_run(store, method, preset="tiny", overrides=[f"init={init}", *overrides])
    return Training(store, run.id, log=lambda _: None)


def _same_except_head(model: torch.nn.Module, source: torch.nn.Module) -> None:
    mine = model.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(mine[key], value), key
    assert mine["head.weight"].shape == (10, 96)  # this run's ten classes, re-initialised


def test_a_timm_folder_gives_the_same_weights_at_step_0_and_the_sources_architecture(store: Store, tmp_path) -> None:
    source = _source()
    timm.models.save_for_hf(source, tmp_path / "folder", model_args=SOURCE, safe_serialization=True)
    t = _started(store, f"local-dir:{tmp_path / 'folder'}")
    _same_except_head(t.model, source)
    cfg = store.get_run(t.run_id).config
    assert (cfg["width"], cfg["depth"], cfg["heads"], cfg["mlp_ratio"]) == (96, 3, 3, 2.0)  # from the source
    (init,) = store.artifacts(t.run_id, "init")
    report = json.loads(store.abspath(init).read_text())
    assert report["sha256"] and any("classifier head re-initialised" in n for n in report["notes"])
    assert report["missing"] == ["head.weight", "head.bias"] and report["unexpected"] == []


def test_a_safetensors_file_and_a_pth_state_dict_load_and_a_pickle_with_code_is_refused(store: Store, tmp_path) -> None:
    source = _source()
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    _same_except_head(_started(store, str(tmp_path / "w.safetensors"), "width=96", "heads=3").model, source)
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "w.pth")  # as training scripts save
    _same_except_head(_started(store, str(tmp_path / "w.pth"), "width=96", "heads=3").model, source)
    save_file({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "ddp.safetensors")  # DDP's names
    assert source_shape(str(tmp_path / "ddp.safetensors"), store)["width"] == 96  # read in the header, as timm's
    _same_except_head(_started(store, str(tmp_path / "ddp.safetensors"), "width=96", "heads=3").model, source)

    torch.save({"model": source.state_dict(), "args": Opaque()}, tmp_path / "code.pth")
    with pytest.raises(WorkbenchError, match="pickled Python objects.*could run any code"):
        _started(store, str(tmp_path / "code.pth"))
    with pytest.raises(WorkbenchError, match="no file"):
        _started(store, str(tmp_path / "absent.safetensors"))
    with pytest.raises(ConfigError, match="not a source of weights"):
        create_run(store, "vit", preset="tiny", overrides=["init=weights.txt"])


def test_weights_of_another_network_or_a_broken_file_are_refused_with_a_reason(store: Store, tmp_path) -> None:
    """A CNN started from a ViT's file loaded nothing and trained from scratch under the file's name;
    a Swin from a ViT's weights, and a damaged file, ended in timm's or safetensors' traceback."""
    save_file(_source().state_dict(), tmp_path / "vit.safetensors")
    with pytest.raises(WorkbenchError, match="none of the source's tensors are this run's network's.*another "
                                             "architecture"):
        _started(store, str(tmp_path / "vit.safetensors"), method="cnn")
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, embed_dim=32, depths=(1, 1, 1, 1),
                             num_heads=(1, 1, 1, 1), num_classes=10)  # timm's layout at 224 px, small
    save_file(swin.state_dict(), tmp_path / "swin.safetensors")
    with pytest.raises(WorkbenchError, match="timm cannot adapt the source to this run's SwinTransformer"):
        _started(store, str(tmp_path / "swin.safetensors"), method="swin")
    (tmp_path / "broken.safetensors").write_bytes(b"\xff" * 64)  # refused as the run is created: its header
    with pytest.raises(ConfigError, match="broken.safetensors is not a safetensors file"):
        _started(store, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ConfigError, match="not a plain ViT's weights: no blocks.0.mlp.fc1.weight among its"):
        _started(store, str(tmp_path / "swin.safetensors"))  # a Swin's weights for a ViT run: read in the header
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a zip archive cut short: only torch tells
    with pytest.raises(WorkbenchError, match="cut.pth cannot be read as weights .*give a .safetensors file"):
        _started(store, str(tmp_path / "cut.pth"))


def test_a_32px_source_into_a_64px_run_resamples_position_and_patch_embeddings(store: Store, tmp_path) -> None:
    save_file(_source().state_dict(), tmp_path / "w.safetensors")  # 8x8 grid of 4 px patches
    t = _started(store, str(tmp_path / "w.safetensors"), "width=96", "heads=3", "image_size=64", "patch_size=16")
    assert t.model.pos_embed.shape == (1, 1 + 4 * 4, 96) and t.model.patch_embed.proj.weight.shape == (96, 3, 16, 16)
    notes = json.loads(store.abspath(store.artifacts(t.run_id, "init")[0]).read_text())["notes"]
    assert any("position embeddings resampled" in n and "(1, 65, 96) -> (1, 17, 96)" in n for n in notes)
    assert any("patch embedding resampled" in n for n in notes)
    images, labels = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8), torch.arange(8) % 10
    out, _ = t.train_step([(images, labels)])
    assert torch.isfinite(out["loss"])


def test_a_run_starts_from_an_mae_encoder_and_a_finetune_needs_no_parent(store: Store) -> None:
    mae = create_run(store, "mae", preset="tiny", overrides=["max_steps=2", "eval_every=2"])
    assert execute(store, mae.id, log=lambda _: None) == "finished"
    encoder = torch.load(store.abspath(store.artifacts(mae.id, "checkpoint")[-1]), weights_only=True)["model"]
    t = _started(store, f"run:{mae.id}:last")
    mine = t.model.state_dict()
    assert all(torch.equal(mine[k.removeprefix("encoder.")], v) for k, v in encoder.items()
               if k.startswith("encoder.") and k.removeprefix("encoder.") in mine)
    probe = _started(store, f"run:{mae.id}", "mode=linear", method="finetune")
    assert torch.equal(probe.model.blocks[0].attn.qkv.weight, mine["blocks.0.attn.qkv.weight"])
    with pytest.raises(ConfigError, match="either from a parent run or from init"):
        create_run(store, "finetune", preset="tiny", overrides=[f"init=run:{mae.id}"], parents={"encoder": mae.id})


def _hub_cache(monkeypatch, folder: Path) -> None:
    """huggingface_hub's cache in `folder`, its server unreachable (nothing listens there): offline."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


def test_timm_weights_in_the_local_cache_load_offline_resampled_to_the_run(store: Store, monkeypatch,
                                                                         tmp_path) -> None:
    _hub_cache(monkeypatch, tmp_path / "hub")
    torch.manual_seed(3)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False)  # ViT-Ti/16 at 224 px
    repo = tmp_path / "hub" / ("models--" + source.pretrained_cfg["hf_hub_id"].replace("/", "--"))
    commit = "0" * 40  # the cache's layout, as a download leaves it
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file(source.state_dict(), repo / "snapshots" / commit / "model.safetensors")
    t = _started(store, "timm:vit_tiny_patch16_224")  # into the tiny preset: 32 px, patches of 4
    cfg = store.get_run(t.run_id).config
    assert (cfg["width"], cfg["depth"], cfg["heads"], cfg["patch_size"]) == (192, 12, 3, 4)
    assert torch.equal(t.model.blocks[11].mlp.fc2.weight, source.blocks[11].mlp.fc2.weight)
    assert t.model.pos_embed.shape == (1, 1 + 8 * 8, 192) and t.model.patch_embed.proj.weight.shape[-1] == 4


def test_offline_hub_and_uncached_timm_names_say_what_to_do(store: Store, monkeypatch, tmp_path) -> None:
    _hub_cache(monkeypatch, tmp_path / "empty-cache")
    with pytest.raises(WorkbenchError, match="Hub cannot be reached.*init=local-dir:FOLDER"):
        _started(store, "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k")
    with pytest.raises(WorkbenchError, match="not in the local cache"):
        _started(store, "timm:vit_tiny_patch16_224")
    with pytest.raises(WorkbenchError, match="timm has no model"):
        _started(store, "timm:no_such_net")


def test_the_head_is_kept_only_for_the_same_classes(store: Store, tmp_path) -> None:
    from workbench.data import shapes

    source = _source(num_classes=10)
    for name, labels in (("same", list(shapes.CLASSES)), ("other", [f"c{i}" for i in range(10)])):
        timm.models.save_for_hf(source, tmp_path / name, model_args={**SOURCE, "num_classes": 10},
                                model_config={"label_names": labels}, safe_serialization=True)
    kept = _started(store, f"local-dir:{tmp_path / 'same'}").model.head.weight
    assert torch.equal(kept, source.head.weight)
    fresh = _started(store, f"local-dir:{tmp_path / 'other'}")
    assert not torch.equal(fresh.model.head.weight, source.head.weight)
    notes = json.loads(store.abspath(store.artifacts(fresh.run_id, "init")[0]).read_text())["notes"]
    assert any("the source's classes (c0, c1, c2, c3, c4 and 5 more) are not this data's (circle" in n for n in notes)
