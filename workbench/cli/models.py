"""Trained models from the command line: export them (and runs' logs, for other tools), ask them
about one image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench import paths
from workbench.config import WEIGHTS
from workbench.errors import WorkbenchError
from workbench.export import CARD, FILES, FORMATS
from workbench.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="write a finished run's model as safetensors + config, ONNX, torch.export")
    e.add_argument("run", type=int)
    e.add_argument("--format", nargs="+", choices=[*FORMATS, "all"], default=["all"],
                   help="which files (default: all three, each reloaded and checked)")
    e.add_argument("--out", help="folder to write (default: the run's exports/ folder)")
    e.add_argument("--overwrite", action="store_true", help="replace files already there")
    e.add_argument("--weights", choices=WEIGHTS, default="best",
                   help="best: the best evaluation's (by the run's best_metric; the last where none was kept), "
                        "last: the newest checkpoint's, ema: the moving average (runs with ema=true)")
    e.add_argument("--push", metavar="ORG/NAME", help="then upload the folder to this Hugging Face Hub repository "
                                                      "(online, with a write token)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_export)

    g = sub.add_parser("export-logs", help="runs' metrics (and snapshot images) for other tools: TensorBoard event "
                                           "files, or one CSV / Parquet table")
    g.add_argument("runs", type=int, nargs="+", metavar="RUN")
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--tensorboard", metavar="DIR", help="a folder of event files, one sub-folder per run "
                                                          "(`tensorboard --logdir DIR`)")
    where.add_argument("--csv", metavar="FILE", help="one long table: run, name, method, step, epoch, key, value, "
                                                    "wall_time")
    where.add_argument("--parquet", metavar="FILE", help="the same table as Parquet")
    g.add_argument("--overwrite", action="store_true", help="replace the file, or the runs' folders, already there")
    g.set_defaults(func=cmd_export_logs)

    d = sub.add_parser("diagnose", help="a classifier's confusion matrix, per-class precision and recall, top-5 and "
                                        "most confident mistakes, for any of its weights")
    d.add_argument("run", type=int)
    d.add_argument("--weights", choices=WEIGHTS, default="best", help="which weights (default: the best)")
    d.add_argument("--out", help="PNG file for the gallery of the most confident mistakes")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_diagnose)

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


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.export.exporter import (
        export_run,  # torch loads here, only for this command
    )

    store = Store()
    formats = list(FORMATS) if "all" in args.format else list(dict.fromkeys(args.format))
    out = Path(args.out) if args.out else paths.run_dir(args.run, create=False) / "exports"  # made once checked
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731 - progress on stderr, the result on stdout
    results = export_run(store, args.run, out, formats, overwrite=args.overwrite, weights=args.weights, log=log)
    pushed = None
    if args.push:
        from workbench.export.hub import push

        pushed = push(out, args.push, log)
    files = {fmt: [str(out / name) for name in FILES[fmt]] for fmt in formats}
    if args.json:
        print(json.dumps({"run": args.run, "folder": str(out), "files": files, "max_abs_diff": results,
                          "model_card": str(out / CARD), "pushed": pushed}, indent=1))
    else:
        for fmt in formats:
            print(f"{fmt:<12} {'  '.join(files[fmt])}  (max abs diff {results[fmt]:.1e})")
        print(f"{'model card':<12} {out / CARD}")
        if pushed:
            print(f"{'pushed':<12} {pushed}")
    return 0


def cmd_export_logs(args: argparse.Namespace) -> int:
    from workbench.export import logs

    store = Store()
    runs = list(dict.fromkeys(args.runs))
    for run_id in runs:
        store.get_run(run_id)  # a missing run is refused before anything is written
    target = Path(args.tensorboard or args.csv or args.parquet).expanduser()
    existing = logs.already_there(store, runs, target, tensorboard=bool(args.tensorboard))
    if existing and not args.overwrite:
        raise WorkbenchError(f"{existing[0]} already exists; overwrite it (--overwrite) or choose another "
                             f"{'folder' if args.tensorboard else 'file'}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if args.tensorboard:
            logs.to_tensorboard(store, runs, target, log=lambda line: print(line, file=sys.stderr))
            print(f"tensorboard --logdir {target}")
        else:
            rows = (logs.to_csv if args.csv else logs.to_parquet)(store, runs, target)
            print(f"{rows} metric rows of {len(runs)} run(s) -> {target}")
    except OSError as exc:
        raise WorkbenchError(f"cannot write {target}: {exc}") from None
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from workbench import fmt, inspect  # torch loads here, only for this command

    diagnostics, mistakes, weights = inspect.diagnose(Store(), args.run, weights=args.weights)
    if args.out:
        from PIL import Image

        out = Path(args.out).expanduser()
        if mistakes is None:
            print(f"{fmt.no_gallery(diagnostics)}: {out} not written", file=sys.stderr)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mistakes).save(out)
            print(f"the most confident mistakes: {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"run": args.run, "weights": weights, **diagnostics}, indent=1))
    else:
        print(f"run {args.run}, weights {weights}")
        print("\n".join(fmt.diagnostics_lines(diagnostics) + fmt.confusion_lines(diagnostics)))
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
