"""Every registered method: builds tiny, trains two CPU steps with finite loss and gradients
everywhere, snapshots uint8 H x W x 3 images, and names an exportable module."""

import numpy as np
import pytest
import torch

from workbench.data import DataInfo
from workbench.engine.optim import build_optimizer
from workbench.methods import config_class, get_method, make_config, method_names
from workbench.methods.base import ParentRun

CLASSES = [f"c{i}" for i in range(10)]
INFO = DataInfo(CLASSES, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def tiny_parents(name: str) -> dict[str, ParentRun]:
    """An untrained tiny run of the first allowed method for every parent role `name` needs."""
    parents = {}
    for role, methods in make_config(name, "tiny").required_parents().items():
        cfg = make_config(methods[0], "tiny")
        state = get_method(methods[0])(cfg, INFO, tiny_parents(methods[0])).build().state_dict()
        parents[role] = ParentRun(100, methods[0], cfg, lambda state=state: state)
    return parents


@pytest.mark.parametrize("name", method_names())
def test_method_conformance(name: str) -> None:
    torch.manual_seed(0)
    cfg = make_config(name, "tiny")
    assert config_class(name).description
    method = get_method(name)(cfg, INFO, tiny_parents(name))
    model = method.build()
    optimizer = build_optimizer(method.param_groups(model), cfg)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(2):
        out = method.step(model, _batch())
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        optimizer.zero_grad()
        out["loss"].backward()
        for n, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and torch.isfinite(p.grad).all(), f"no gradient reaches {n}"
        optimizer.step()
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed, "two optimizer steps changed no weights"
    model.eval()
    metrics = method.evaluate(model, [_batch(4), _batch(6)])
    assert "loss" in metrics and all(np.isfinite(v) for v in metrics.values())
    for key, image in method.snapshot(model, _batch(4)).items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 4, key  # a figure (draw.py)
        assert (image[..., 3] == 255).any() and (image[..., 3] < 255).any(), key  # pictures on paper
    assert isinstance(method.exportable(model), torch.nn.Module)


def test_vit_output_matches_plain_timm_model() -> None:
    """The workbench's ViT is a timm VisionTransformer: its weights load into one unchanged."""
    from timm.models.vision_transformer import VisionTransformer

    cfg = make_config("vit", "tiny")
    model = get_method("vit")(cfg, INFO).build().eval()
    plain = VisionTransformer(img_size=32, patch_size=4, num_classes=10, embed_dim=64, depth=2, num_heads=4,
                              mlp_ratio=2.0).eval()
    plain.load_state_dict(model.state_dict())
    x = _batch(2)[0]
    assert torch.allclose(model(x), plain(x), atol=1e-6)


@pytest.mark.parametrize("name", ["mae", "beit", "mpp", "vit", "deit"])
def test_tokens_and_position_tables_are_never_weight_decayed(name: str) -> None:
    """Also inside wrappers (encoder.vit.pos_embed), as the references exclude them."""
    method = get_method(name)(make_config(name, "tiny"), INFO, tiny_parents(name))
    model = method.build()
    decayed = {id(p) for g in method.param_groups(model) if g["weight_decay"] > 0 for p in g["params"]}
    tables = [n for n, p in model.named_parameters()
              if n.split(".")[-1] in ("pos_embed", "cls_token", "mask_token", "dist_token") and p.requires_grad]
    assert tables and not [n for n, p in model.named_parameters() if n in tables and id(p) in decayed]
