"""Fine-tuning and linear probing of a pre-trained encoder, and the checks on its parent."""

import pytest
import torch

from tests.conftest import finished_run
from workbench.data import DataInfo
from workbench.errors import ConfigError
from workbench.jobs import create_run
from workbench.methods import get_method, make_config
from workbench.methods.base import ParentRun
from workbench.store import RunStatus, Store

INFO = DataInfo([f"c{i}" for i in range(10)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)


@pytest.fixture
def encoder_parent() -> tuple[ParentRun, torch.nn.Module]:
    torch.manual_seed(1)
    cfg = make_config("mae", "tiny")
    mae = get_method("mae")(cfg, INFO).build()
    state = mae.state_dict()
    return ParentRun(7, "mae", cfg, lambda: state), mae


def _build(parent: ParentRun, **overrides):
    method = get_method("finetune")(make_config("finetune", "tiny", overrides), INFO, {"encoder": parent})
    return method, method.build()


def test_full_finetune_starts_from_the_encoder_weights(encoder_parent) -> None:
    parent, mae = encoder_parent
    method, model = _build(parent)
    for name in ("blocks.1.attn.qkv.weight", "patch_embed.proj.weight", "pos_embed", "cls_token"):
        assert torch.equal(model.state_dict()[name], mae.encoder.state_dict()[name]), name
    assert model.head.out_features == 10 and model.global_pool == "avg"
    groups = method.param_groups(model)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert scale[id(params["head.weight"])] == 1.0
    assert scale[id(params["blocks.1.mlp.fc1.weight"])] == pytest.approx(0.75)
    assert scale[id(params["patch_embed.proj.weight"])] == pytest.approx(0.75 ** 3)
    assert scale[id(params["cls_token"])] == scale[id(params["pos_embed"])] == pytest.approx(0.75 ** 3)
    assert scale[id(params["blocks.0.norm1.weight"])] == pytest.approx(0.75 ** 2)


def test_linear_probe_trains_only_the_head(encoder_parent) -> None:
    parent, _ = encoder_parent
    method, model = _build(parent, mode="linear")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}
    assert isinstance(model.head[0], torch.nn.BatchNorm1d) and not model.head[0].affine
    frozen = model.blocks[0].attn.qkv.weight.clone()
    optimizer = torch.optim.AdamW([p for g in method.param_groups(model) for p in g["params"]], lr=0.1)
    model.train()
    method.step(model, (torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))))["loss"].backward()
    optimizer.step()
    assert torch.equal(model.blocks[0].attn.qkv.weight, frozen)


def test_finetune_takes_the_encoder_shape_from_its_parent(store: Store) -> None:
    parent = finished_run(store, "mae", width=96, heads=3, patch_size=8)
    run = create_run(store, "finetune", preset="tiny", parents={"encoder": parent})
    assert (run.config["width"], run.config["heads"], run.config["patch_size"]) == (96, 3, 8)
    assert store.parents(run.id)["encoder"].id == parent


def test_finetune_trains_on_its_encoders_dataset_unless_told_another(store: Store, tmp_path) -> None:
    """It fine-tuned on the built-in shapes whatever its encoder had been pre-trained on."""
    from PIL import Image

    from workbench.data import registry

    for kind, name in (("imagefolder", "pets"), ("unlabeled", "street")):
        for label in ("cat", "dog"):
            (tmp_path / name / label).mkdir(parents=True)
            for i in range(8):
                Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(tmp_path / name / label / f"{i}.png")
        registry.register(store, name, kind, tmp_path / name)
    pets = finished_run(store, "mae", dataset="pets")
    assert create_run(store, "finetune", preset="tiny", overrides=["batch_size=4"],
                      parents={"encoder": pets}).config["dataset"] == "pets"
    other = create_run(store, "finetune", preset="tiny", overrides=["dataset=shapes"], parents={"encoder": pets})
    assert other.config["dataset"] == "shapes"  # suggested, not locked: a downstream dataset of one's own
    street = finished_run(store, "mae", dataset="street")  # pre-trained without labels: a fine-tune needs them
    with pytest.raises(ConfigError, match=f"has no labels.*it is the encoder run {street}'s: name another with "
                                          f"dataset=NAME"):
        create_run(store, "finetune", preset="tiny", parents={"encoder": street})


@pytest.mark.parametrize("setup, field, words", [
    ("no parent", "parent:encoder", "needs a finished mae, beit or mpp run as its encoder"),
    ("unfinished", "parent:encoder", "is running; wait until it has finished"),
    ("not an encoder", "parent:encoder", "is a vit run; the encoder must be a mae, beit or mpp run"),
    ("other patch size", "patch_size", "patch_size 8 differs from the encoder run"),
    ("other width", "width", "width 128 differs"),
    ("checkpoint deleted", "parent:encoder", "has no checkpoint file left"),
])
def test_bad_parents_are_refused_before_anything_is_written(store: Store, setup: str, field: str,
                                                            words: str) -> None:
    parent = finished_run(store, "mae")
    overrides: list[str] = []
    parents = {"encoder": parent}
    if setup == "no parent":
        parents = {}
    elif setup == "unfinished":
        store.update_run(parent, status=RunStatus.RUNNING)
    elif setup == "not an encoder":
        parents = {"encoder": create_run(store, "vit", preset="tiny").id}
    elif setup == "other patch size":
        overrides = ["patch_size=8"]
    elif setup == "other width":
        overrides = ["width=128"]
    else:
        store.abspath(store.latest_artifact(parent, "checkpoint")).unlink()
    before = len(store.list_runs())
    with pytest.raises(ConfigError) as err:
        create_run(store, "finetune", preset="tiny", overrides=overrides, parents=parents)
    assert err.value.field == field and words in str(err.value)
    assert len(store.list_runs()) == before


def test_linear_probe_exports_as_a_plain_timm_classifier(encoder_parent) -> None:
    """The probe's BatchNorm is folded into its linear head: the same outputs, timm's own layout."""
    from workbench.export.exporter import as_timm

    parent, _ = encoder_parent
    method, model = _build(parent, mode="linear")
    norm = model.head[0]
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    plain = method.exportable(model)
    assert isinstance(plain.head, torch.nn.Linear) and isinstance(model.head, torch.nn.Sequential)
    timm_model, arch = as_timm(plain)
    assert arch == "vit_tiny_patch16_224"  # the nearest timm size to a 64-wide encoder
    assert torch.allclose(timm_model(x), model(x), atol=1e-5)
