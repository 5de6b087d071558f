import json

import pytest

from workbench.config import PRESETS
from workbench.errors import ConfigError
from workbench.methods import (
    METHOD_CONFIGS,
    config_class,
    config_from_dict,
    make_config,
)


@pytest.mark.parametrize("method", sorted(METHOD_CONFIGS))
@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_defaults_and_presets_are_valid_and_round_trip(method: str, preset: str | None) -> None:
    cfg = make_config(method, preset)
    again = config_from_dict(method, json.loads(cfg.to_json()))  # as the database keeps it
    assert again == cfg
    assert json.loads(cfg.to_json()) == cfg.to_dict()


def test_every_field_has_help() -> None:
    for cls in METHOD_CONFIGS.values():
        for spec in cls.field_specs():
            assert spec.help, f"{cls.method}.{spec.name} has no help text"


def test_presets_differ_and_merge_down_the_hierarchy() -> None:
    tiny, paper = make_config("vit", "tiny"), make_config("vit", "paper")
    assert (tiny.image_size, tiny.patch_size, tiny.width) == (32, 4, 64)
    assert (paper.image_size, paper.patch_size, paper.grid_size) == (224, 16, 14)
    assert tiny.label_smoothing == 0.0  # from VitConfig's own tiny preset, on top of the backbone's


@pytest.mark.parametrize("overrides, field, words", [
    (["patch_size=5"], "patch_size", "does not divide image size 32"),
    (["heads=5"], "heads", "do not divide width"),
    (["lr=-0.1"], "lr", "outside the allowed range"),
    (["epochs=0"], "epochs", "outside the allowed range"),
    (["warmup_epochs=50"], "warmup_epochs", "must be shorter"),
    (["device=gpu7"], "device", "not a device"),
    (["precision=fp8"], "precision", "not one of"),
    (["pos_embed=3d"], "pos_embed", "not one of"),
    (["width=abc"], "width", "is not a whole number"),
    (["bogus=1"], "bogus", "unknown field"),
    (["lr"], "lr", "expected key=value"),
])
def test_bad_values_name_the_field(overrides: list[str], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config("vit", "tiny", overrides)
    assert err.value.field == field
    assert words in str(err.value)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown method 'nope'; choose one of .*vit"):
        config_class("nope")


def test_overrides_are_typed() -> None:
    cfg = make_config("vit", overrides=["lr=0.01", "epochs=3", "pos_embed=none", "image_size=64", "patch_size=8"])
    assert cfg.lr == 0.01 and isinstance(cfg.lr, float)
    assert cfg.epochs == 3 and cfg.pos_embed == "none" and cfg.grid_size == 8


def test_json_with_ints_for_floats_and_type_errors() -> None:
    assert config_from_dict("vit", {"lr": 1}).lr == 1.0
    with pytest.raises(ConfigError) as err:
        config_from_dict("vit", {"epochs": 2.5})
    assert err.value.field == "epochs"


def test_non_strict_loading_drops_removed_fields() -> None:
    """A config stored by an older build may carry a field that no longer exists."""
    cfg = config_from_dict("vit", {"lr": 0.002, "retired_field": 1}, strict=False)
    assert cfg.lr == 0.002
    with pytest.raises(ConfigError):
        config_from_dict("vit", {"retired_field": 1})


@pytest.mark.parametrize("status, words", [
    ("queued", "run 8 is queued; wait until it has finished or pick another run"),
    ("running", "run 8 is running; wait until it has finished or pick another run"),
    ("failed", "run 8 failed (`workbench show 8` says why); resume it (`workbench resume 8`) or pick another run"),
    ("cancelled", "run 8 was cancelled; resume it (`workbench resume 8`) or pick another run"),
    ("interrupted", "run 8 was interrupted; resume it (`workbench resume 8`) or pick another run"),
])
def test_an_unfinished_parent_is_refused_with_what_to_do_for_its_status(status: str, words: str) -> None:
    """A failed parent will never finish by waiting: the message says so (issue #18, item 23)."""
    from workbench.config import ParentInfo

    parent = ParentInfo(8, "mae", status, make_config("mae", "tiny"))
    with pytest.raises(ConfigError) as err:
        make_config("finetune", "tiny").check_parents({"encoder": parent})
    assert err.value.field == "parent:encoder" and str(err.value) == f"parent:encoder: {words}"


@pytest.mark.parametrize("method, clip", [("vit", 1.0), ("mpp", 1.0), ("beit", 3.0), ("swin", 5.0), ("mae", 0.0),
                                          ("deit", 0.0), ("finetune", 0.0)])
def test_gradient_clipping_is_each_references(method: str, clip: float) -> None:
    """ViT (big_vision) 1.0, BEiT 3.0, Swin 5.0; MAE pre-training, MAE fine-tuning and DeiT clip nothing
    (ViT's `paper` preset is DeiT's recipe, so it does not clip either)."""
    for preset in (None, *PRESETS):
        assert make_config(method, preset, {}).grad_clip == (0.0 if (method, preset) == ("vit", "paper") else clip)


@pytest.mark.parametrize("method, expected", [
    ("mae", dict(batch_size=4096, blr=1.5e-4, epochs=800, warmup_epochs=40.0, weight_decay=0.05, adam_beta2=0.95,
                 crop_min=0.2, norm_pix_loss=True, grad_clip=0.0, mask_ratio=0.75)),
    ("finetune", dict(batch_size=1024, blr=5e-4, layer_decay=0.65, epochs=100, warmup_epochs=5.0, drop_path=0.1,
                      mixup=0.8, cutmix=1.0, label_smoothing=0.1, augment="randaugment",
                      randaug="rand-m9-mstd0.5-inc1", reprob=0.25)),
    ("deit", dict(batch_size=1024, blr=2.5e-4, epochs=300, weight_decay=0.05, mixup=0.8, cutmix=1.0, reprob=0.25,
                  repeated_aug=3, randaug="rand-m9-mstd0.5-inc1", ema=True, ema_decay=0.99996, distill="hard",
                  grad_clip=0.0)),
    ("beit", dict(batch_size=2048, lr=1.5e-3, epochs=800, warmup_epochs=10.0, grad_clip=3.0, drop_path=0.1,
                  mask_ratio=0.4, mask_strategy="block")),
])
def test_paper_presets_are_the_references(method: str, expected: dict) -> None:
    """The values README's preset table cites; a micro-batch of 256 per forward pass at most."""
    cfg = make_config(method, "paper", {})
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.micro_batch() <= 256 and cfg.micro_batch() * cfg.accum_steps * cfg.nproc == cfg.batch_size
