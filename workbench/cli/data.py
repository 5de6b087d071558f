"""Datasets and methods from the command line: list, add, show and forget datasets; describe
methods, their presets and fields."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.config import PRESETS
from workbench.data import BUILTIN_DATASETS, KIND_HELP, KINDS, validation_text
from workbench.errors import WorkbenchError
from workbench.methods import config_class, method_names
from workbench.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("datasets", help="list, add, show or remove datasets (your image folders, CIFAR)")
    ds_sub = ds.add_subparsers(dest="action")
    ds.set_defaults(func=cmd_datasets, action="list")
    ds_list = ds_sub.add_parser("list", help="the datasets runs can use")
    ds_list.add_argument("--json", action="store_true")
    add = ds_sub.add_parser("add", help="register a dataset (every image is checked; bad files are reported)")
    add.add_argument("name", help="the name runs will use (--set dataset=NAME)")
    add.add_argument("path", help="its folder")
    add.add_argument("--kind", choices=KINDS, default="imagefolder",
                     help="; ".join(f"{k}: {h}" for k, h in KIND_HELP.items()))
    add.add_argument("--val", help="a separate validation folder (default: a seeded split of PATH)")
    add.add_argument("--val-fraction", type=float, default=0.1, help="share of each class held out for validation")
    add.add_argument("--download", action="store_true", help="cifar10/cifar100: download into PATH when online")
    add.add_argument("--json", action="store_true")
    show = ds_sub.add_parser("show", help="classes, counts, image sizes and skipped files of a dataset")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    remove = ds_sub.add_parser("remove", help="forget a dataset (its files stay where they are)")
    remove.add_argument("name")

    d = sub.add_parser("methods", help="methods, presets and config fields with their help")
    d.add_argument("method", nargs="?", help="only this method")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_methods)


def cmd_datasets(args: argparse.Namespace) -> int:
    from workbench.data import registry

    store = Store()
    if args.action == "add":
        if args.download:
            if args.kind not in ("cifar10", "cifar100"):
                raise WorkbenchError(f"--download fetches cifar10 or cifar100, not {args.kind}")
            from workbench.data.download import download_cifar

            download_cifar(args.kind, Path(args.path))
        record = registry.register(store, args.name, args.kind, Path(args.path),
                                   val_path=Path(args.val) if args.val else None, val_fraction=args.val_fraction)
        return _print_dataset(record, args.json)
    if args.action == "show":
        record = store.get_dataset(args.name)
        if record is None:
            raise WorkbenchError(f"no dataset named {args.name!r}; `workbench datasets` lists them")
        return _print_dataset(record, args.json)
    if args.action == "remove":
        if store.get_dataset(args.name) is None and args.name not in BUILTIN_DATASETS:
            raise WorkbenchError(f"no dataset named {args.name!r}; `workbench datasets` lists them")
        dropped = registry.forget(store, args.name)
        used = [run.id for run in registry.users(store, args.name)]
        print(f"dataset {args.name} removed (its files are untouched; {dropped} decoded cache(s) deleted)"
              + (f"; run(s) {', '.join(map(str, used))} trained on it: they keep their results, and can be resumed "
                 f"or trained again once it is added again under the same name" if used else ""), file=sys.stderr)
        return 0
    records = store.list_datasets()
    if getattr(args, "json", False):
        print(json.dumps([_dataset_dict(r) for r in records], indent=1))
        return 0
    print(f"shapes  (built in)  {BUILTIN_DATASETS['shapes']}")
    for r in records:
        classes = len(r.stats.get("classes", []))
        print(f"{r.name}  ({r.kind})  {r.path}  {classes} classes  {r.stats.get('images') or '?'} images"
              + (f"  {r.stats['skipped']} skipped" if r.stats.get("skipped") else "")
              + (f"  {len(r.stats['warnings'])} warning(s): `workbench datasets show {r.name}`"
                 if r.stats.get("warnings") else ""))
    return 0


def _dataset_dict(record: Any) -> dict[str, Any]:
    return {"name": record.name, "kind": record.kind, "path": record.path, "val_path": record.val_path,
            "val_fraction": record.val_fraction, **record.stats}


def _print_dataset(record: Any, as_json: bool) -> int:
    info = _dataset_dict(record)
    if as_json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{record.name} ({record.kind}) at {record.path}")
    if info.get("classes"):
        counts = info.get("per_class") or []
        print("classes: " + ", ".join(f"{c} ({n})" if counts else c
                                       for c, n in zip(info["classes"], counts or [None] * len(info["classes"]))))
    if info.get("images"):
        print(f"images: {info['images']}; width min/median/max {info['width']}, height {info['height']}")
    print(f"validation: {validation_text(record, long=True)}")
    for warning in info.get("warnings", []):
        print(f"warning: {warning}")
    for path, why in info.get("problems", []):
        print(f"skipped: {path}: {why}")
    for path, why in info.get("val_problems", []):
        print(f"skipped (validation): {path}: {why}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    names = [args.method] if args.method else method_names()
    described: dict[str, Any] = {}
    for name in names:
        cls = config_class(name)
        described[name] = {
            "description": cls.description,
            "parents": {role: list(ms) for role, ms in cls.parent_roles.items()},
            "presets": {p: cls.preset(p) for p in PRESETS},
            "fields": [{"name": f.name, "type": f.type.__name__, "default": f.default, "help": f.help,
                        "min": f.min, "max": f.max, "choices": f.choices} for f in cls.field_specs()],
        }
    if args.json:
        print(json.dumps(described, indent=1))
        return 0
    for name, d in described.items():
        print(f"{name}: {d['description']}")
        for f in d["fields"]:
            allowed = f"one of {', '.join(f['choices'])}" if f["choices"] else (
                f"[{f['min']}, {f['max']}]" if f["min"] is not None or f["max"] is not None else "")
            print(f"  {f['name']:<18} {f['type']:<6} {str(f['default']):<12} {f['help']}"
                  + (f"  {allowed}" if allowed else ""))
        print()
    return 0
