"""Creating a run: every check happens here, before anything is written or started."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from workbench.config import ParentInfo, TrainConfig
from workbench.data import check_batch, check_dataset
from workbench.errors import ConfigError, StoreError
from workbench.jobs import slurm
from workbench.jobs.gpus import gpu_count
from workbench.methods import config_class, config_from_dict, make_config
from workbench.methods.backbone import ViTBackboneConfig
from workbench.methods.start import parse_init, weights_file_problem
from workbench.store import Run, Store


def create_run(store: Store, method: str, *, preset: str | None = None,
               overrides: Mapping[str, Any] | Iterable[str] = (), parents: Mapping[str, int] | None = None,
               name: str = "") -> Run:
    """Validate config and parents, then insert a `queued` run. A refused run writes nothing."""
    cfg = prepare_config(store, method, preset=preset, overrides=overrides, parents=parents)
    return store.create_run(method, cfg.to_dict(), name=name.strip(), parents=parents)


def prepare_config(store: Store, method: str, *, preset: str | None = None,
                   overrides: Mapping[str, Any] | Iterable[str] = (),
                   parents: Mapping[str, int] | None = None) -> TrainConfig:
    """The validated config of a new run with these parents; writes nothing."""
    infos = {}
    for role, parent_id in (parents or {}).items():
        parent = _run_named(store, parent_id, f"parent:{role}")
        if parent.status == "finished":  # an unfinished one is refused by the parent check, saying so
            _check_weights(store, parent, f"parent:{role}", ("checkpoint",))  # a parent's last is loaded
        infos[role] = ParentInfo(parent.id, parent.method, parent.status,
                                 config_from_dict(parent.method, parent.config, strict=False))
    return checked_config(store, method, preset=preset, overrides=overrides, parents=infos)


def checked_config(store: Store, method: str, *, preset: str | None, overrides: Mapping[str, Any] | Iterable[str],
                   parents: Mapping[str, ParentInfo]) -> TrainConfig:
    """Defaults, preset, the fields inherited from parents, overrides; then every check, the
    dataset's and the parents' included. Parents may be runs or runs a study has yet to make.

    Fields a method inherits from a parent (an encoder's shape, say) are taken from it unless
    set explicitly; an explicit value that differs is refused by the parent check. Fields it is
    `suggests`ed are taken the same way, and may differ."""
    cls = config_class(method)
    inherited = {k: getattr(info.config, k) for role, info in parents.items()
                 for k in (*cls.inherits.get(role, ()), *cls.suggests.get(role, ())) if hasattr(info.config, k)}
    cfg = make_config(method, preset, overrides, inherited=inherited)
    live = isinstance(store, Store)  # not a window's catalog (a study's plan, checked as it is typed)
    try:
        record = check_dataset(store, cfg.dataset, cls.needs_labels)
    except ConfigError as exc:
        given = next(((role, info.run_id) for role, info in parents.items() if "dataset" in cls.suggests.get(role, ())
                      and cfg.dataset == getattr(info.config, "dataset", None)), None)
        if given is None:
            raise
        raise ConfigError("dataset", f"{exc.reason} (it is the {given[0]} run {given[1]}'s: name another with "
                                     f"dataset=NAME)") from None
    check_batch(record, cfg.batch_size, list_files=live)
    if live:  # the files and runs it names: the catalog has no artifacts, and Start checks it
        check_init(store, getattr(cfg, "init", ""), isinstance(cfg, ViTBackboneConfig))
    cfg.check_parents(parents)
    if cfg.executor == "slurm":
        slurm.check_available()  # the device is the cluster's node's
    else:
        check_device(cfg.device)
    return cfg


def check_init_file(spec: str, vit: bool) -> None:
    """Refuse a file or folder to start from that is not there or cannot be weights (as far as is
    told without torch: `weights_file_problem`); `vit`: for a ViT-family run. Other kinds pass."""
    if not spec:
        return
    kind, value = parse_init(spec)
    if kind in ("file", "local-dir"):
        path = Path(value).expanduser()
        if not (path.is_file() if kind == "file" else (path / "config.json").is_file()):
            raise ConfigError("init", f"no {'file' if kind == 'file' else 'model folder (config.json)'} at {path}")
        problem = weights_file_problem(path, vit) if kind == "file" else None
        if problem:
            raise ConfigError("init", problem)


def check_init(store: Store, spec: str, vit: bool) -> None:
    """Refuse weights to start from that cannot be there: a missing or unusable file or folder
    (`check_init_file`), an unknown run, a run with no checkpoint file (what it would load).
    Whether they fit the network is found when the worker loads them (that needs torch)."""
    check_init_file(spec, vit)
    kind, value = parse_init(spec) if spec else ("", "")
    if kind == "run":
        run = _run_named(store, int(value.partition(":")[0]), "init")
        _check_weights(store, run, "init", ("checkpoint", "best"))


def _run_named(store: Store, run_id: int, field: str) -> Run:
    try:
        return store.get_run(run_id)
    except StoreError:
        raise ConfigError(field, f"there is no run {run_id}; `workbench runs` lists them") from None


def _check_weights(store: Store, run: Run, field: str, kinds: tuple[str, ...]) -> None:
    """Refuse a run to take weights from that has no file of these kinds left."""
    files = [a for kind in kinds for a in store.artifacts(run.id, kind)]
    if not any(store.abspath(a).exists() for a in files):
        raise ConfigError(field, f"run {run.id} ({run.status}, step {run.step}) has no checkpoint file"
                                 + (" left (deleted?)" if files else ": it never saved one")
                                 + "; pick another run or train it again")


def check_device(device: str) -> None:
    """Refuse a CUDA device this machine lacks, now rather than when the worker starts (runs
    train on this machine; found without importing torch)."""
    if not device.startswith("cuda"):
        return
    count = gpu_count()
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= count:
        raise ConfigError("device", f"{device} is not on this machine ("
                                    + (f"it has {count} CUDA GPU{'s' if count > 1 else ''}: cuda:0"
                                       + (f" to cuda:{count - 1}" if count > 1 else "") if count else
                                       "no CUDA GPU found") + "); use device=auto or cpu")
