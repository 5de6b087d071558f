"""DeiT: distillation token, hard/soft losses, the frozen teacher, averaged inference, checks."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import finished_run
from tests.data.test_user_datasets import write_folder
from workbench.data import DataInfo, registry
from workbench.engine.optim import build_optimizer
from workbench.errors import ConfigError, WorkbenchError
from workbench.jobs import create_run
from workbench.methods import get_method, make_config
from workbench.methods.base import ParentRun
from workbench.methods.deit.method import distillation_loss, load_teacher_file
from workbench.store import RunStatus, Store

INFO = DataInfo([f"c{i}" for i in range(10)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)


def _teacher(image_size: int = 32) -> ParentRun:
    cfg = make_config("cnn", "tiny", {"image_size": image_size})
    torch.manual_seed(3)
    state = get_method("cnn")(cfg, INFO).build().state_dict()
    return ParentRun(5, "cnn", cfg, lambda: state)


def _deit(**overrides):
    torch.manual_seed(0)
    method = get_method("deit")(make_config("deit", "tiny", overrides), INFO, {"teacher": _teacher()})
    return method, method.build()


def _batch(n: int = 6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_distillation_token_sits_after_cls_and_its_head_learns() -> None:
    method, model = _deit()
    student = model.student
    assert student.num_prefix_tokens == 2 and student.dist_token.shape == (1, 1, 64)
    assert student.pos_embed.shape == (1, 2 + 64, 64)
    tokens = student._pos_embed(student.patch_embed(torch.zeros(1, 3, 32, 32)))
    assert torch.allclose(tokens[0, 1], (student.dist_token + student.pos_embed[:, 1])[0, 0])  # [cls, dist, ...]
    model.train()
    method.step(model, _batch())["loss"].backward()
    assert student.head_dist.weight.grad.abs().sum() > 0 and student.dist_token.grad.abs().sum() > 0


def test_hard_and_soft_losses_match_hand_computed_values() -> None:
    dist = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.tensor([[0.1, 2.0, 0.3], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])

    def log_softmax(row: list[float]) -> list[float]:
        top = max(row)
        z = math.log(sum(math.exp(v - top) for v in row)) + top
        return [v - z for v in row]

    hard = -(log_softmax([2.0, 0.5, -1.0])[1] + log_softmax([0.0, 1.0, 3.0])[0]) / 2  # teacher argmax: 1, 0
    assert distillation_loss("hard", dist, teacher, labels, 3.0).item() == pytest.approx(hard, rel=1e-6)
    tau, kl = 3.0, 0.0
    for s_row, t_row in zip(dist.tolist(), teacher.tolist()):
        log_s = log_softmax([v / tau for v in s_row])
        log_t = log_softmax([v / tau for v in t_row])
        kl += sum(math.exp(lt) * (lt - ls) for lt, ls in zip(log_t, log_s))
    soft = kl * tau * tau / 6  # summed, times tau^2, over the number of logits (2 x 3)
    assert distillation_loss("soft", dist, teacher, labels, tau).item() == pytest.approx(soft, rel=1e-5)
    none = -(log_softmax([2.0, 0.5, -1.0])[0] + log_softmax([0.0, 1.0, 3.0])[2]) / 2
    assert distillation_loss("none", dist, None, labels, tau).item() == pytest.approx(none, rel=1e-6)


def test_total_loss_weights_cls_and_distillation_terms() -> None:
    method, model = _deit(distill="soft", alpha=0.1, tau=3.0)
    model.train()
    out = method.step(model, _batch())
    assert out["loss"].item() == pytest.approx(0.9 * out["loss_cls"].item() + 0.1 * out["loss_dist"].item(), rel=1e-6)


def test_the_teacher_stays_frozen_in_eval_mode() -> None:
    method, model = _deit()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    optimizer = build_optimizer(method.param_groups(model), method.cfg)
    model.train()
    assert not model.teacher.training and model.student.training
    for _ in range(3):
        optimizer.zero_grad()
        method.step(model, _batch())["loss"].backward()
        optimizer.step()
    after = model.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_inference_averages_both_heads_logits_as_the_exported_timm_model() -> None:
    method, model = _deit()
    model.eval()
    images, labels = _batch()
    cls, dist = model.heads(images)
    assert torch.allclose(model(images), (cls + dist) / 2, atol=1e-6)
    student = model.student  # what export writes: timm's VisionTransformerDistilled, in eval mode
    assert type(student).__name__ == "VisionTransformerDistilled" and not student.distilled_training
    assert torch.allclose(student(images), model(images), atol=1e-5)
    metrics = method.evaluate(model, [(images, labels)])
    assert {"top1", "top1_cls", "top1_dist", "teacher_top1", "agreement"} <= set(metrics)
    assert metrics["top1"] == pytest.approx((student(images).argmax(-1) == labels).float().mean().item())


def test_report_holds_the_comparison_the_gui_shows() -> None:
    method, model = _deit()
    model.eval()
    batches = [_batch(8), _batch(5)]
    data, images = method.report(model, batches)
    assert set(data["top1"]) == {"cls", "dist", "avg", "teacher"}
    metrics = method.evaluate(model, batches)  # per batch on the device, weighed by batch size
    for head, key in (("avg", "top1"), ("cls", "top1_cls"), ("dist", "top1_dist"), ("teacher", "teacher_top1")):
        assert metrics[key] == pytest.approx(data["top1"][head])
    assert metrics["agreement"] == pytest.approx(data["agreement"])
    with torch.no_grad():
        probs = torch.cat([model(x).softmax(-1) for x, _ in batches])
    labels = torch.cat([y for _, y in batches])  # the loss as DeiT's evaluation has reported it, capped per image
    assert metrics["loss"] == pytest.approx(float(F.nll_loss(probs.clamp_min(1e-12).log(), labels)), rel=1e-5)
    matrix = np.array(data["agreement_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 13
    assert np.trace(matrix) / 13 == pytest.approx(data["agreement"])
    assert len(data["per_class"]["teacher"]) == len(data["per_class"]["student"]) == 10
    grid = images["teacher_vs_student"]
    assert grid.dtype == np.uint8 and grid.ndim == 3


def test_a_teacher_trained_at_another_size_sees_resized_images() -> None:
    method = get_method("deit")(make_config("deit", "tiny"), INFO, {"teacher": _teacher(64)})
    model = method.build()
    assert model.teacher_size == 64
    assert model.teacher_logits(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_teacher_files(tmp_path) -> None:
    from safetensors.torch import save_file

    teacher = get_method("cnn")(make_config("cnn", "tiny"), INFO).build()
    path = tmp_path / "teacher.safetensors"
    save_file(teacher.state_dict(), str(path))
    loaded = load_teacher_file(str(path), "resnet10t", 10)
    assert torch.equal(loaded.state_dict()["fc.weight"], teacher.state_dict()["fc.weight"])
    with pytest.raises(WorkbenchError, match="not a timm architecture"):
        load_teacher_file(str(path), "resnet_imaginary", 10)
    with pytest.raises(WorkbenchError, match="does not fit a resnet18"):
        load_teacher_file(str(path), "resnet18", 10)
    with pytest.raises(ConfigError) as err:
        make_config("deit", "tiny", {"teacher_file": str(tmp_path / "missing.pt"), "teacher_arch": "resnet18"})
    assert err.value.field == "teacher_file"


def test_teacher_checks_before_anything_starts(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a finished cnn, vit, deit or swin run as its teacher"):
        create_run(store, "deit", preset="tiny")
    write_folder(tmp_path / "photos", per_class=30)
    registry.register(store, "photos", "imagefolder", tmp_path / "photos")
    other = finished_run(store, "cnn", dataset="photos")
    with pytest.raises(ConfigError, match="dataset shapes differs from the teacher run .*'s photos"):
        create_run(store, "deit", preset="tiny", overrides=["dataset=shapes"], parents={"teacher": other})
    with pytest.raises(ConfigError, match="dataset shapes differs from the teacher"):  # a teacher need not be
        create_run(store, "deit", preset="tiny", overrides=["dataset=shapes", "distill=none"],
                   parents={"teacher": other})
    taken = create_run(store, "deit", preset="tiny", overrides=["distill=none"], parents={"teacher": other})
    assert taken.config["dataset"] == "photos"  # the student's classes are its teacher's
    busy = finished_run(store, "cnn")
    store.update_run(busy, status=RunStatus.RUNNING)
    with pytest.raises(ConfigError, match="is running"):
        create_run(store, "deit", preset="tiny", parents={"teacher": busy})
    assert len(store.list_runs()) == 3  # the refused students left nothing
    baseline = create_run(store, "deit", preset="tiny", overrides=["distill=none"])
    assert baseline.config["distill"] == "none"
