"""No training step makes the host wait for the GPU: checked on the CPU, for every method.

On a GPU the host queues a step's kernels and runs ahead of them. Anything that needs a value
computed on the device stops it until the GPU has caught up: `.item()` or `float()` of a tensor,
`.cpu()`, `x[bool_mask]` and `nonzero` (the output's size depends on the values), and a blocking copy
of host data to the device (`torch.rand(n).to(device)`, `torch.tensor(values, device=device)`:
PyTorch synchronises the stream after a copy from pageable memory). None of these needs a GPU to be
seen: `Syncs` records them while a run trains on the CPU, as CUDA's sync debug mode would on a GPU.
What it cannot see: code that runs only on a GPU (`if device.type == "cuda"`, fp16's GradScaler),
a host tensor made before the watched step or by `torch.from_numpy`, and kernels that wait only on
CUDA unless named in READS.
"""

from __future__ import annotations

import traceback
import weakref
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from workbench.engine.execute import execute
from workbench.engine.trainer import Training
from workbench.jobs import create_run
from workbench.store import RunStatus, Store

READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_dim",
         "unique_consecutive", "is_nonzero", "equal", "allclose",  # each waits for the device's values
         "bincount", "histc", "histogram"}  # CUDA's read their input's range back first
MOVES = {"to", "cuda", "copy_"}
BACK = {"cpu", "tolist", "numpy"}  # copies to the host: on a CPU run nothing is dispatched for them


def _where() -> str:
    """The workbench line that made the call."""
    frames = [f for f in traceback.extract_stack() if "/workbench/" in f.filename and "/tests/" not in f.filename]
    return f"{frames[-1].filename.rsplit('/workbench/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"


class _Reads(TorchDispatchMode):
    """Operators that read values back from the device."""

    def __init__(self, found: list[str]) -> None:
        super().__init__()
        self.found = found

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = func.__name__.split(".")[0]
        bool_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ()) if i is not None)
        repeats = name == "repeat_interleave" and isinstance(args[0], torch.Tensor) and not (kwargs or {}).get(
            "output_size") and (len(args) == 1 or isinstance(args[1], torch.Tensor))
        if name in READS or bool_index or repeats:
            self.found.append(f"{name}{' with a bool index' if bool_index else ''} at {_where()}")
        return func(*args, **(kwargs or {}))


class _Copies(TorchFunctionMode):
    """Host data copied to the device: a tensor made without a device (on the host, on a GPU run)
    or computed from one, moved by `.to`/`.cuda`/`copy_`; and `torch.tensor(data, device=...)`."""

    def __init__(self, found: list[str]) -> None:
        super().__init__()
        self.found = found
        self.host: dict[int, weakref.ref] = {}  # by id (a WeakSet would compare tensors with ==)
        self.constructors = _device_constructors()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        from_host = any(self._on_host(t) for t in inputs)
        to_device = name == "cuda" or kwargs.get("device") is not None or any(
            isinstance(a, (torch.device, str)) for a in args[1:]) or (name == "copy_" or name == "to") and any(
            isinstance(a, torch.Tensor) for a in args[1:])  # .to(dtype) stays where it is
        if name in MOVES and from_host and to_device:
            self.found.append(f"host tensor copied by .{name} at {_where()}")
            from_host = False
        if name in BACK:
            self.found.append(f".{name}() at {_where()}")
        if name in ("tensor", "as_tensor") and kwargs.get("device") is not None:
            self.found.append(f"torch.{name}(..., device=) at {_where()}")
        out = func(*args, **kwargs)
        if from_host or (func in self.constructors and kwargs.get("device") is None):
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.host[id(t)] = weakref.ref(t)
        return out

    def _on_host(self, t: torch.Tensor) -> bool:
        ref = self.host.get(id(t))
        return ref is not None and ref() is t


class Syncs:
    """Both checks at once, as a context: `found` lists what would have made the host wait."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.modes = (_Copies(self.found), _Reads(self.found))

    def __enter__(self) -> "Syncs":
        for mode in self.modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self.modes):
            mode.__exit__(*exc)


def _steps_found(store: Store, method: str, overrides: list[str], parents: dict[str, int] | None = None) -> list[str]:
    """What steps 2-4 of a tiny run would have waited for: the first may copy what it keeps (the
    data's statistics, say) to the device once; the reports, not due, are left out."""
    run = create_run(store, method, preset="tiny", parents=parents,
                     overrides=["max_steps=4", "batch_size=16", "log_every=100", "eval_every=100",
                                "checkpoint_every=100", "snapshot_every=100", *overrides])
    training = Training(store, run.id, lambda _: None)
    training.resume()
    syncs, step = Syncs(), training.train_step

    def watched(batches: list) -> Any:
        if training.step == 0:
            return step(batches)
        with syncs:
            return step(batches)

    training.train_step = watched  # type: ignore[method-assign]
    assert training.loop()
    return syncs.found


def test_the_check_sees_what_would_make_a_gpu_run_wait() -> None:
    x = torch.randn(8, 4)
    with Syncs() as syncs:
        flip = torch.rand(8) < 0.5
        flip.to(x.device)
        torch.tensor([0.5, 0.25], device=x.device)
        x[x[:, 0] > 0].sum()
        float(x.mean())
        x.argmax(1).cpu()
        torch.bincount(x.argmax(1), minlength=4)
    assert [f.split(" at ")[0] for f in syncs.found] == [
        "host tensor copied by .to", "torch.tensor(..., device=)", "index with a bool index", "_local_scalar_dense",
        ".cpu()", "bincount"]
    with Syncs() as syncs:
        flip = torch.rand(8, device=x.device) < 0.5
        torch.where(flip.view(-1, 1), x.flip(1), x).mean()
        torch.nonzero_static(flip, size=8)
        (torch.rand(8) < 0.5).to(torch.float32)  # a host tensor's dtype changed: no copy
    assert syncs.found == []


@pytest.mark.parametrize(("method", "overrides"), [
    ("vit", ["augment=crop_flip", "mixup=0.8", "cutmix=1.0", "reprob=0.25", "accum_steps=2", "ema=true",
             "grad_clip=1.0"]),
    ("mae", []), ("mpp", ["target=color3bit_4x4"]), ("mpp", ["target=pixel_l2"]),
    ("swin", []), ("cnn", []), ("dvae", []),
])
def test_a_training_step_never_waits_for_the_device(store: Store, method: str, overrides: list[str]) -> None:
    found = _steps_found(store, method, overrides)
    assert not found, sorted(set(found))


def test_steps_of_methods_with_parents_never_wait_for_the_device(store: Store) -> None:
    """DeiT with its teacher, BEiT with its tokenizer, and a fine-tuning of the MAE's encoder."""
    short = ["max_steps=2", "batch_size=16"]
    teacher, dvae, mae = (create_run(store, m, preset="tiny", overrides=short) for m in ("cnn", "dvae", "mae"))
    for run in (teacher, dvae, mae):
        assert execute(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    for method, parents in (("deit", {"teacher": teacher.id}), ("beit", {"tokenizer": dvae.id}),
                            ("finetune", {"encoder": mae.id})):
        found = _steps_found(store, method, [], parents)
        assert not found, (method, sorted(set(found)))


@pytest.mark.parametrize("method_name, teacher, keys", [
    ("vit", False, {"loss", "top1"}),
    ("deit", False, {"loss", "top1", "top1_cls", "top1_dist"}),
    ("deit", True, {"loss", "top1", "top1_cls", "top1_dist", "teacher_top1", "agreement"})])
def test_an_evaluation_reads_its_metrics_once_not_at_every_batch(method_name: str, teacher: bool,
                                                                  keys: set[str]) -> None:
    from workbench.data import DataInfo
    from workbench.methods import get_method, make_config
    from workbench.methods.base import ParentRun

    info = DataInfo([str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3, 32)
    parents = {}
    if teacher:
        cnn = make_config("cnn", "tiny")
        state = get_method("cnn")(cnn, info).build().state_dict()
        parents = {"teacher": ParentRun(1, "cnn", cnn, lambda: state)}
    overrides = {} if teacher or method_name != "deit" else {"distill": "none"}
    method = get_method(method_name)(make_config(method_name, "tiny", overrides), info, parents)
    model = method.build().eval()
    batches = [(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))) for _ in range(5)]
    with Syncs() as syncs:
        metrics = method.evaluate(model, batches)
    assert set(metrics) == keys  # each read once, not once per batch
    assert [f.split(" at ")[0] for f in syncs.found] == ["_local_scalar_dense"] * len(keys), syncs.found
