"""Headless interface: `workbench train | runs | show | metrics | cancel | resume | export | inspect |
datasets | methods | study | gui`.

A stable scripting surface: `train` prints only the new run id on stdout (progress goes to
stderr), `runs` and `show` take `--json`, `metrics --csv` prints the full series. Errors the
user can fix print one line and exit with status 2. `WORKBENCH_HOME` selects the data folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from workbench import fmt, paths
from workbench.config import PRESETS, config_class
from workbench.data import BUILTIN_DATASETS, KIND_HELP, KINDS
from workbench.errors import WorkbenchError
from workbench.export import CARD, FILES, FORMATS
from workbench.jobs import Runner, cancel_run, create_run, reconcile, resume_run
from workbench.jobs.runner import log_path
from workbench.methods import method_names
from workbench.store import Run, RunStatus, Store


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `workbench show 3 | head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")
        return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="ViT Workbench, headless.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="create a run and start its worker; prints the run id")
    t.add_argument("--method", required=True, help=f"one of: {', '.join(method_names())}")
    t.add_argument("--preset", choices=PRESETS, help="start from a preset (default: the method's defaults)")
    t.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config fields (`workbench methods` lists them)")
    t.add_argument("--parent", action="append", default=[], metavar="ROLE=RUN",
                   help="a parent run: teacher, encoder or tokenizer, as the method needs")
    t.add_argument("--name", default="", help="a name for the run (default: METHOD-ID)")
    t.add_argument("--wait", action="store_true", help="stay attached with a progress bar until it ends")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--status", help="only runs with this status")
    r.add_argument("--method", help="only runs of this method")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)

    s = sub.add_parser("show", help="config, status, last metrics and artifacts of a run")
    s.add_argument("run", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    m = sub.add_parser("metrics", help="the full metric series of a run")
    m.add_argument("run", type=int)
    m.add_argument("--key", help="only this metric (e.g. val/top1)")
    m.add_argument("--csv", action="store_true", help="CSV with a header row")
    m.set_defaults(func=cmd_metrics)

    c = sub.add_parser("cancel", help="stop a queued or running run (it keeps a checkpoint)")
    c.add_argument("run", type=int)
    c.add_argument("--grace", type=float, default=10.0, help="seconds to wait before killing the worker")
    c.set_defaults(func=cmd_cancel)

    u = sub.add_parser("resume", help="continue an interrupted, failed or cancelled run from its checkpoint")
    u.add_argument("run", type=int)
    u.add_argument("--wait", action="store_true")
    u.set_defaults(func=cmd_resume)

    e = sub.add_parser("export", help="write a finished run's model as safetensors + config, ONNX, torch.export")
    e.add_argument("run", type=int)
    e.add_argument("--format", nargs="+", choices=[*FORMATS, "all"], default=["all"],
                   help="which files (default: all three, each reloaded and checked)")
    e.add_argument("--out", help="folder to write (default: the run's exports/ folder)")
    e.add_argument("--overwrite", action="store_true", help="replace files already there")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("inspect", help="what a trained run does with one image: reconstructions, attention maps")
    i.add_argument("view", choices=("reconstruct", "attention"))
    i.add_argument("run", type=int)
    i.add_argument("--image", default="val:0", help="val:N (the N-th validation image) or an image file")
    i.add_argument("--step", type=int, help="which checkpoint (default: the newest readable one)")
    i.add_argument("--ratio", type=float, help="reconstruct: mask ratio (default: the run's)")
    i.add_argument("--strategy", help="reconstruct: random, block or grid (default: the run's)")
    i.add_argument("--seed", type=int, default=0, help="reconstruct: seed of the mask")
    i.add_argument("--out", required=True, help="PNG file to write")
    i.add_argument("--json", action="store_true", help="print the result as JSON")
    i.set_defaults(func=cmd_inspect)

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

    lim = sub.add_parser("limit", help="show or set how many runs train at once on this machine")
    lim.add_argument("runs", type=int, nargs="?", help="the new limit (every scheduler of this store obeys it)")
    lim.set_defaults(func=cmd_limit)

    d = sub.add_parser("methods", help="methods, presets and config fields with their help")
    d.add_argument("method", nargs="?", help="only this method")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_methods)

    _study_parser(sub)

    g = sub.add_parser("gui", help="open the desktop app")
    g.set_defaults(func=lambda _args: __import__("workbench.ui", fromlist=["main"]).main())
    return p


def _study_parser(sub: argparse._SubParsersAction) -> None:
    from workbench.studies import FOLLOW_UPS, TEMPLATES

    st = sub.add_parser("study", help="sweeps and pipelines of runs: the papers' ablations, or your own",
                        description="Run a built-in study (one per template below) or your own sweep; "
                                    "follow, list, cancel, resume or delete studies.")
    st_sub = st.add_subparsers(dest="action", required=True, metavar="TEMPLATE|sweep|list|show|cancel|resume|delete")

    def starting(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                       help="set a field in every stage that has it (dataset=pets, seed=1, device=cuda)")
        p.add_argument("--name", default="", help="a name for the study (default: TEMPLATE-ID)")
        p.add_argument("--parallel", type=int, default=2, help="runs of this study training at once (default 2)")
        p.add_argument("--wait", action="store_true", help="stay attached until it ends, then print the results")
        p.set_defaults(func=cmd_study_start)

    for name, template in TEMPLATES.items():
        t = st_sub.add_parser(name, help=template.description.replace("%", "%%"), description=f"{template.description} "
                                                                           f"Paper: {template.paper_trend}")
        t.add_argument("--budget", choices=("tiny", "paper"), default="tiny",
                       help="tiny: minutes on a laptop CPU; paper: the papers' recipes, for a GPU")
        t.add_argument("--seeds", type=int, nargs="+", default=[], metavar="SEED",
                       help="repeat every point with each seed; the table adds means and sds (e.g. --seeds 0 1 2)")
        starting(t)
    sw = st_sub.add_parser("sweep", help="your own sweep of one method over one or two fields",
                           description="e.g. workbench study sweep --method vit --vary lr=1e-4:1e-2:3:log "
                                       "--vary depth=2,4 --preset tiny --wait")
    sw.add_argument("--method", required=True)
    sw.add_argument("--preset", choices=PRESETS, help="every stage starts from this preset (default: defaults)")
    sw.add_argument("--vary", action="append", required=True, metavar="FIELD=VALUES",
                    help="V1,V2,... or START:STOP:COUNT[:log]; twice for a grid of two fields")
    sw.add_argument("--then", nargs="+", default=[], choices=list(FOLLOW_UPS),
                    help="after each pre-training run: a linear probe and/or a fine-tune of its encoder")
    sw.add_argument("--parent", action="append", default=[], metavar="ROLE=RUN", help="an existing parent run")
    starting(sw)
    ls = st_sub.add_parser("list", help="every study with its status and progress")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_study_list)
    sh = st_sub.add_parser("show", help="a study's runs and results table")
    sh.add_argument("study", type=int)
    out = sh.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true", help="only the results table, as CSV")
    out.add_argument("--markdown", action="store_true", help="only the results table, as Markdown")
    sh.set_defaults(func=cmd_study_show)
    for action, text in (("cancel", "stop a study: its queued and running runs are cancelled"),
                         ("resume", "go on with a stopped or cancelled study (runs continue from checkpoints)"),
                         ("delete", "forget a study; its runs stay, as ordinary runs")):
        a = st_sub.add_parser(action, help=text)
        a.add_argument("study", type=int)
        if action == "resume":
            a.add_argument("--wait", action="store_true")
        a.set_defaults(func=cmd_study_control)


# ------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    store = Store()
    overrides = [item for group in args.overrides for item in group]
    run = create_run(store, args.method, preset=args.preset, overrides=overrides, parents=_parents(args.parent),
                     name=args.name)
    return _launch(store, run.id, args.wait)


def _parents(items: list[str]) -> dict[str, int]:
    parents = {}
    for item in items:
        role, sep, run_id = item.partition("=")
        if not sep or not run_id.strip().isdigit():
            raise WorkbenchError(f"--parent takes ROLE=RUN_ID (e.g. teacher=3), got {item!r}")
        parents[role.strip()] = int(run_id)
    return parents


def cmd_resume(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    run = resume_run(store, args.run)
    return _launch(store, run.id, args.wait)


def _launch(store: Store, run_id: int, wait: bool) -> int:
    """Let the scheduler start the run now if the host's limit allows (else it waits in the queue
    and starts when a run ends); with `wait`, follow it to its end."""
    from workbench.studies import tick

    runner = Runner(store)
    tick(store, runner)
    print(run_id, flush=True)
    if not wait:
        if store.get_run(run_id).status == RunStatus.QUEUED:
            print(f"run {run_id} queued: {store.max_concurrent()} runs are training on this machine "
                  f"(`workbench limit` shows or sets how many); it starts when one ends", file=sys.stderr)
        else:
            print(f"run {run_id} started; `workbench show {run_id}` follows it, log: {log_path(run_id)}",
                  file=sys.stderr)
        return 0
    status = _follow(store, runner, run_id)
    run = store.get_run(run_id)
    print(f"run {run_id} {status}" + "".join(f"  {k}={fmt.number(v)}" for k, v in run.summary.items()), file=sys.stderr)
    if run.error:
        print(run.error, file=sys.stderr)
    return 0 if status == RunStatus.FINISHED else 1


def _follow(store: Store, runner: Runner, run_id: int) -> RunStatus:
    """Wait with a tqdm bar on stderr; Ctrl-C detaches and leaves the run going."""
    from tqdm import tqdm

    bar = tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True, desc=f"run {run_id}")

    def update(run: Run) -> None:
        bar.set_description(f"run {run_id}" if run.total_steps else f"run {run_id} starting", refresh=False)
        if run.total_steps and bar.total != run.total_steps:
            bar.reset(total=run.total_steps)
        bar.n = run.step
        last = store.last_metrics(run_id)
        bar.set_postfix({k.split("/")[-1] if k == "train/loss" else k: f"{v:.3f}" for k, (_, v) in last.items()
                         if k in ("train/loss", config_class(run.method).key_metric)}, refresh=False)
        bar.refresh()

    from workbench.studies import wait_for

    try:
        return wait_for(store, runner, run_id, on_poll=update)
    except KeyboardInterrupt:
        print(f"\ndetached; run {run_id} goes on (`workbench cancel {run_id}` stops it)", file=sys.stderr)
        raise
    finally:
        bar.close()


def cmd_limit(args: argparse.Namespace) -> int:
    store = Store()
    if args.runs is not None:
        store.set_max_concurrent(args.runs)
    print(store.max_concurrent())
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    runs = store.list_runs(status=args.status, method=args.method)
    if args.json:
        print(json.dumps([_run_dict(r) for r in runs], indent=1))
        return 0
    rows = [("ID", "NAME", "METHOD", "STATUS", "PROGRESS", "DEVICE", "KEY METRIC", "STARTED", "DURATION")]
    for r in runs:
        rows.append((str(r.id), r.name, r.method, r.status, f"{r.progress:.0%}", r.device or "",
                     fmt.key_metric(r), fmt.clock(r.started_at), fmt.duration(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    run = store.get_run(args.run)
    info = _run_dict(run)
    info["parents"] = {role: p.id for role, p in store.parents(run.id).items()}
    info["children"] = [{"role": role, "run": c.id} for role, c in store.children(run.id)]
    info["last_metrics"] = {k: {"step": s, "value": v} for k, (s, v) in store.last_metrics(run.id).items()}
    info["artifacts"] = [{"kind": a.kind, "name": a.name, "step": a.step, "path": str(store.abspath(a))}
                         for a in store.artifacts(run.id)]
    info["log"] = str(log_path(run.id))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"run {run.id}  {run.name}  [{run.method}]  {run.status}  {run.progress:.0%} "
          f"({run.step}/{run.total_steps} steps)  device {run.device or '-'}")
    print(f"started {fmt.clock(run.started_at)}  duration {fmt.duration(run)}")
    if info["parents"]:
        print("parents: " + ", ".join(f"{role}={pid}" for role, pid in info["parents"].items()))
    if run.error:
        print(f"error: {run.error}")
    print("config:")
    for key, value in run.config.items():
        print(f"  {key} = {value}")
    print("last metrics:")
    for key, m in sorted(info["last_metrics"].items()):
        print(f"  {key} = {m['value']:.6g}  (step {m['step']})")
    print("artifacts:")
    for a in info["artifacts"]:
        print(f"  {a['kind']:<10} step {a['step']:<7} {a['path']}")
    print(f"log: {info['log']}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    store = Store()
    store.get_run(args.run)
    rows = store.metrics(args.run, key=args.key)
    out = csv.writer(sys.stdout) if args.csv else None
    if out:
        out.writerow(["step", "epoch", "key", "value", "wall_time"])
    for _, step, epoch, key, value, wall in rows:
        if out:
            out.writerow([step, f"{epoch:.4f}", key, repr(value), f"{wall:.3f}"])
        else:
            print(f"{step:>8}  {epoch:8.3f}  {key:<24} {value:.6g}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    status = cancel_run(Store(), args.run, grace=args.grace)
    print(f"run {args.run} {status}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.export.exporter import (
        export_run,  # torch loads here, only for this command
    )

    store = Store()
    formats = list(FORMATS) if "all" in args.format else list(dict.fromkeys(args.format))
    out = Path(args.out) if args.out else paths.run_dir(args.run) / "exports"
    results = export_run(store, args.run, out, formats, overwrite=args.overwrite,
                         log=lambda line: print(line, file=sys.stderr))
    files = {fmt: [str(out / name) for name in FILES[fmt]] for fmt in formats}
    if args.json:
        print(json.dumps({"run": args.run, "folder": str(out), "files": files, "max_abs_diff": results,
                          "model_card": str(out / CARD)}, indent=1))
    else:
        for fmt in formats:
            print(f"{fmt:<12} {'  '.join(files[fmt])}  (max abs diff {results[fmt]:.1e})")
        print(f"{'model card':<12} {out / CARD}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from PIL import Image

    from workbench import inspect  # torch loads here, only for this command

    store = Store()
    if args.view == "reconstruct":
        image, info = inspect.reconstruct(store, args.run, args.image, ratio=args.ratio, strategy=args.strategy,
                                          seed=args.seed, step=args.step)
    else:
        image, info = inspect.attention(store, args.run, args.image, step=args.step)
    out = Path(args.out).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out)
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"cannot write {out}: {exc}; choose another file (.png)") from None
    info = {"run": args.run, "view": args.view, "image": args.image, "out": str(out), **info}
    print(json.dumps(info) if args.json else "  ".join(f"{k}={v}" for k, v in info.items()))
    return 0


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
        if store.get_dataset(args.name) is None:
            raise WorkbenchError(f"no dataset named {args.name!r}")
        store.remove_dataset(args.name)
        print(f"dataset {args.name} removed (its files are untouched)", file=sys.stderr)
        return 0
    records = store.list_datasets()
    if getattr(args, "json", False):
        print(json.dumps([_dataset_dict(r) for r in records], indent=1))
        return 0
    print(f"shapes  (built in)  {BUILTIN_DATASETS['shapes']}")
    for r in records:
        classes = len(r.stats.get("classes", []))
        print(f"{r.name}  ({r.kind})  {r.path}  {classes} classes  {r.stats.get('images') or '?'} images"
              + (f"  {r.stats['skipped']} skipped" if r.stats.get("skipped") else ""))
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
    print(f"validation: {record.val_path or f'{record.val_fraction:.0%} of each class, seeded'}")
    for path, why in info.get("problems", []):
        print(f"skipped: {path}: {why}")
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


def cmd_study_start(args: argparse.Namespace) -> int:
    from workbench import studies

    store = Store()
    reconcile(store)
    common = studies.common_overrides([item for group in args.overrides for item in group])
    if args.action == "sweep":
        axes = [studies.parse_sweep(args.method, text) for text in args.vary]
        spec = studies.sweep_spec(args.method, axes, budget=args.preset, follow_ups=tuple(args.then),
                                  parents=_parents(args.parent), common=common, parallel=args.parallel,
                                  study_name=args.name)
    else:
        spec = studies.template_spec(args.action, args.budget, common=common, parallel=args.parallel,
                                     study_name=args.name, seeds=args.seeds)
    study = studies.create_study(store, spec)
    print(study.id, flush=True)
    view = studies.overview(store, study.id)
    print(f"study {study.id} ({study.name}): {len(view.members)} runs; `workbench study show {study.id}` follows it",
          file=sys.stderr)
    return _follow_study(store, study.id, args.wait)


def _follow_study(store: Store, study_id: int, wait: bool) -> int:
    """Without --wait: start the first runs (each run's end starts the next). With it: poll,
    print each run as it ends, then the results table; Ctrl-C detaches."""
    import time

    from workbench import studies

    runner = Runner(store)
    if not wait:
        studies.tick(store, runner)  # the first runs; each run's end starts the next
        return 0
    seen: dict[int, str] = {}
    try:
        while True:
            studies.tick(store, runner)
            view = studies.overview(store, study_id)
            for member in view.members:
                run = view.run_of(member)
                state = run.status if run else member.note if member.state == "blocked" else ""
                if state and seen.get(member.id) != state:  # runs starting and ending, members blocked
                    seen[member.id] = state
                    what = f"run {run.id} {run.status}" + "".join(
                        f"  {k}={fmt.number(v)}" for k, v in run.summary.items()) if run else member.note
                    print(f"[{view.progress():4.0%}] {member.name}: {what}", file=sys.stderr)
            if view.status != "running":
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\ndetached; study {study_id} goes on (`workbench study cancel {study_id}` stops it)", file=sys.stderr)
        raise
    print(f"study {study_id} {view.status}\n{_tables(view)}", file=sys.stderr)
    return 0 if view.status == "finished" else 1


def _tables(view: Any) -> str:
    """The results as Markdown, then (with repeated seeds) the mean ± sd of each point."""
    from workbench import studies

    table = studies.results(view)
    means = studies.seed_means(table)
    return studies.to_markdown(table) + (f"\nover seeds:\n{studies.to_markdown(means)}" if means else "")


def cmd_study_list(args: argparse.Namespace) -> int:
    from workbench import studies

    store = Store()
    views = [studies.overview(store, s.id) for s in store.list_studies()]
    if args.json:
        print(json.dumps([_study_dict(v) for v in views], indent=1))
        return 0
    for v in views:
        counts = ", ".join(f"{n} {k}" for k, n in v.counts().items() if n)
        print(f"{v.study.id:>4}  {v.study.name:<28} {v.study.template or 'sweep':<18} {v.study.budget or '-':<6} "
              f"{v.status:<9} {v.progress():4.0%}  {counts}")
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    from workbench import studies

    store = Store()
    reconcile(store)
    view = studies.overview(store, args.study)
    table = studies.results(view)
    if args.csv or args.markdown:
        print((studies.to_csv if args.csv else studies.to_markdown)(table), end="")
        return 0
    info = _study_dict(view)
    if args.json:
        info["results"] = {"header": table.header, "rows": table.rows}
        means = studies.seed_means(table)
        if means:
            info["seed_means"] = {"header": means.header, "rows": means.rows}
        print(json.dumps(info, indent=1))
        return 0
    print(f"study {view.study.id}  {view.study.name}  [{view.study.template or 'sweep'}, {view.study.budget or '-'}]  "
          f"{view.status}  {view.progress():.0%}")
    print(view.study.spec.get("description", ""))
    for m in info["members"]:
        run = f"run {m['run']} {m['status']} {m['progress']:.0%}" if m["run"] else m["note"] or m["state"]
        print(f"  {m['name']:<36} {run}")
    print("\n" + _tables(view))
    if view.study.spec.get("paper_trend"):
        print(f"paper: {view.study.spec['paper_trend']}")
    return 0


def cmd_study_control(args: argparse.Namespace) -> int:
    from workbench import studies

    store = Store()
    store.get_study(args.study)
    if args.action == "cancel":
        done = studies.cancel_study(store, args.study)
        print(f"study {args.study} cancelled" + (f"; runs {', '.join(map(str, done))} stopped" if done else ""),
              file=sys.stderr)
        return 0
    if args.action == "delete":
        view = studies.overview(store, args.study)
        if view.status == "running":
            raise WorkbenchError(f"study {args.study} is running; `workbench study cancel {args.study}` first")
        store.delete_study(args.study)
        print(f"study {args.study} deleted; its runs stay (`workbench runs`)", file=sys.stderr)
        return 0
    reconcile(store)
    resumed = studies.resume_study(store, args.study)
    print(f"study {args.study} goes on" + (f" with runs {', '.join(map(str, resumed))}" if resumed else ""),
          file=sys.stderr)
    return _follow_study(store, args.study, args.wait)


# ------------------------------------------------------------------- helpers
def _study_dict(view: Any) -> dict[str, Any]:
    s = view.study
    members = []
    for m in view.members:
        run = view.run_of(m)
        members.append({"id": m.id, "name": m.name, "method": m.method, "point": m.point, "values": m.values,
                        "state": m.state, "note": m.note, "run": m.run_id, "status": run.status if run else None,
                        "progress": run.progress if run else 0.0, "summary": run.summary if run else {}})
    return {"id": s.id, "name": s.name, "template": s.template, "budget": s.budget, "status": view.status,
            "progress": view.progress(), "counts": view.counts(), "parallel": s.parallel, "created_at": s.created_at,
            "description": s.spec.get("description", ""), "paper_trend": s.spec.get("paper_trend", ""),
            "members": members}


def _run_dict(r: Run) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "method": r.method, "status": r.status, "device": r.device,
            "pid": r.pid, "step": r.step, "total_steps": r.total_steps, "progress": r.progress,
            "created_at": r.created_at, "started_at": r.started_at, "finished_at": r.finished_at,
            "error": r.error, "summary": r.summary, "config": r.config, "notes": r.notes, "tags": r.tags}


if __name__ == "__main__":
    sys.exit(main())
