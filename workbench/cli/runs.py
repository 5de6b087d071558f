"""Runs from the command line: train, resume, cancel, join, list, show, metrics, and the host's limit
of concurrent runs (their Trash, archive and tags: `workbench.cli.tidy`)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any

from workbench import fmt
from workbench.config import PRESETS
from workbench.errors import WorkbenchError
from workbench.fields import given_once
from workbench.jobs import Runner, cancel_run, create_run, reconcile, resume_run
from workbench.jobs.processes import log_path
from workbench.methods import config_class, method_names
from workbench.store import Run, RunStatus, Store
from workbench.store.schema import SEGMENTS
from workbench.studies import tick, wait_for


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
    r.add_argument("--status", choices=[s.value for s in RunStatus], help="only runs with this status")
    r.add_argument("--method", help="only runs of this method")
    r.add_argument("--archived", action="store_true", help="the archived runs (hidden otherwise)")
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

    c = sub.add_parser("cancel", help="stop queued or running runs (each keeps a checkpoint)")
    c.add_argument("runs", type=int, nargs="+", metavar="run")
    c.add_argument("--grace", type=float, default=10.0, help="seconds to wait before killing the worker")
    c.set_defaults(func=cmd_cancel)

    j = sub.add_parser("join", help="train a running multi-machine run (nnodes > 1) on this machine too: its "
                                    "nproc processes meet the others at its rdzv_endpoint")
    j.add_argument("run", type=int)
    j.set_defaults(func=cmd_join)

    u = sub.add_parser("resume", help="continue an interrupted, failed or cancelled run from its checkpoint")
    u.add_argument("run", type=int)
    u.add_argument("--wait", action="store_true")
    u.add_argument("--from-scratch", action="store_true",
                   help="a run with no checkpoint left: start it again from step 0, replacing its metrics")
    u.set_defaults(func=cmd_resume)

    lim = sub.add_parser("limit", help="show or set how many runs train at once on this machine")
    lim.add_argument("runs", type=int, nargs="?", help="the new limit (every scheduler of this store obeys it)")
    lim.set_defaults(func=cmd_limit)


def cmd_train(args: argparse.Namespace) -> int:
    store = Store()
    overrides = given_once(item for group in args.overrides for item in group)
    run = create_run(store, args.method, preset=args.preset, overrides=overrides, parents=parse_parents(args.parent),
                     name=args.name)
    return _launch(store, run.id, args.wait)


def parse_parents(items: list[str]) -> dict[str, int]:
    parents = {}
    for item in items:
        role, sep, run_id = item.partition("=")
        if not sep or not run_id.strip().isdigit():
            raise WorkbenchError(f"--parent takes ROLE=RUN_ID (e.g. teacher=3), got {item!r}")
        if role.strip() in parents:
            raise WorkbenchError(f"--parent {role.strip()} is given twice (runs {parents[role.strip()]} and "
                                 f"{run_id}); give each role once")
        parents[role.strip()] = int(run_id)
    return parents


def cmd_resume(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    run = resume_run(store, args.run, from_scratch=args.from_scratch)
    return _launch(store, run.id, args.wait)


def cmd_join(args: argparse.Namespace) -> int:
    """Become torchrun for this machine's share of a run started elsewhere (it does not return)."""
    run = Store().get_run(args.run)
    if int(run.config.get("nnodes", 1)) < 2:
        raise WorkbenchError(f"run {run.id} trains on one machine (nnodes=1); there is nothing to join")
    if run.config.get("executor", "local") == "slurm":
        raise WorkbenchError(f"run {run.id} is a Slurm job: Slurm starts it on all its {run.config['nnodes']} nodes")
    if run.status != RunStatus.RUNNING:
        raise WorkbenchError(f"run {run.id} is {run.status}; join it once it runs (`workbench show {run.id}`)")
    from workbench.engine.distributed import become_torchrun
    from workbench.jobs.processes import WORKER_MODULE
    from workbench.store.lifecycle import TOKEN_ENV

    os.environ[TOKEN_ENV] = run.worker_token or ""  # its start's: the rank 0 on this machine, if any, writes by it
    become_torchrun(WORKER_MODULE, run.id, run.config)
    return 0


def _launch(store: Store, run_id: int, wait: bool) -> int:
    """Let the scheduler start the run now if the host's limit allows (else it waits in the queue
    and starts when a run ends); with `wait`, follow it to its end."""
    runner = Runner(store)
    tick(store, runner)
    print(run_id, flush=True)
    if not wait:
        run = store.get_run(run_id)
        if run.job_id:
            print(f"run {run_id} sent to Slurm: {fmt.job(run)}; `workbench show {run_id}` follows it, log: "
                  f"{log_path(run_id)} once it starts", file=sys.stderr)
        elif run.status == RunStatus.QUEUED:
            print(f"run {run_id} queued: {store.max_concurrent()} runs are training on this machine "
                  f"(`workbench limit` shows or sets how many); it starts when one ends", file=sys.stderr)
        else:
            print(f"run {run_id} started; `workbench show {run_id}` follows it, log: {log_path(run_id)}",
                  file=sys.stderr)
        return 0
    status = _follow(store, runner, run_id)
    run = store.get_run(run_id)
    print(f"run {run_id} {status}" + "".join(f"  {k}={fmt.number(v)}" for k, v in run.results.items()), file=sys.stderr)
    if run.error:
        print(run.error, file=sys.stderr)
    return 0 if status == RunStatus.FINISHED else 1


def _follow(store: Store, runner: Runner, run_id: int) -> RunStatus:
    """Wait with a tqdm bar on stderr; Ctrl-C detaches and leaves the run going."""
    from tqdm import tqdm

    bar = tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True, desc=f"run {run_id}")

    def update(run: Run) -> None:
        bar.set_description(f"run {run_id}" if run.total_steps else f"run {run_id} {fmt.job(run) or 'starting'}",
                            refresh=False)
        if run.total_steps and bar.total != run.total_steps:
            bar.reset(total=run.total_steps)
        bar.n = run.step
        last = store.last_metrics(run_id)
        bar.set_postfix({k.split("/")[-1] if k == "train/loss" else k: f"{v:.3f}" for k, (_, v) in last.items()
                         if k in ("train/loss", config_class(run.method).key_metric)}, refresh=False)
        bar.refresh()

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
    runs = store.list_runs(status=args.status, method=args.method, archived=args.archived)
    if args.json:
        print(json.dumps([run_dict(r) for r in runs], indent=1))
    if not runs:  # an empty answer says so: a filter that matched nothing is not a blank screen
        which = " ".join(filter(None, [args.status, args.method, "archived" if args.archived else ""]))
        print(f"no {which} runs" if which else "no runs yet; `workbench train` starts one", file=sys.stderr)
    if args.json or not runs:
        return 0
    rows = [("ID", "NAME", "METHOD", "STATUS", "PROGRESS", "DEVICE", "KEY METRIC", "STARTED", "DURATION")]
    for r in runs:
        rows.append((str(r.id), r.name, r.method, fmt.status(r), f"{r.progress:.0%}", r.device or fmt.job(r),
                     fmt.key_metric(r), fmt.clock(r.started_at), fmt.duration(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    run = store.get_run(args.run)
    info = run_dict(run)
    info["parents"] = {role: p.id for role, p in store.parents(run.id).items()}
    info["children"] = [{"role": role, "run": c.id} for role, c in store.children(run.id)]
    info["last_metrics"] = {k: {"step": s, "value": v} for k, (s, v) in store.last_metrics(run.id).items()}
    info["artifacts"] = [{"kind": a.kind, "name": a.name, "step": a.step, "path": str(store.abspath(a))}
                         for a in store.artifacts(run.id)]
    info["log"] = str(log_path(run.id))
    inits = store.artifacts(run.id, "init")
    info["started_from"] = inits[-1].meta if inits else None
    info["diagnostics"] = (fmt.run_report(store, run.id) or {}).get("diagnostics")
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"run {run.id}  {run.name}  [{run.method}]  {fmt.status(run)}  {run.progress:.0%} "
          f"({run.step}/{run.total_steps} steps)  device {run.device or '-'}"
          + (f"  {fmt.job(run)}" if run.job_id else ""))
    if run.trashed_at is not None:
        print(f"in the Trash since {fmt.clock(run.trashed_at)}: `workbench restore {run.id}` brings it back")
    segments = fmt.segments(run)
    print(f"started {fmt.clock(run.started_at)}  duration {fmt.duration(run)}" + (f"  ({segments})" if segments else ""))
    if run.environment:
        print(f"environment: {fmt.environment(run)}")
    for warning in run.warnings:
        print(f"warning: {warning}")
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
    if info["started_from"]:
        start = info["started_from"]
        print(f"started from: {start['source']}" + (f" (sha256 {start['sha256']})" if start["sha256"] else ""))
    if info["diagnostics"]:
        print("\n".join(fmt.diagnostics_lines(info["diagnostics"])))
    print("artifacts:")
    for a in info["artifacts"]:
        print(f"  {a['kind']:<10} step {a['step']:<7} {a['path']}")
    print(f"log: {info['log']}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    store = Store()
    run = store.get_run(args.run)
    keys = store.metric_keys(run.id)
    if args.key and args.key not in keys:
        recorded = ", ".join(keys) or "none"
        if RunStatus(run.status).is_final:  # it records nothing more until resumed: a wrong key, not an early one
            raise WorkbenchError(f"run {run.id} has no metric {args.key!r}; the metrics it recorded: {recorded}")
        print(f"run {run.id} has recorded no {args.key!r} yet ({run.status}); so far: {recorded}", file=sys.stderr)
    elif not keys:
        print(f"run {run.id} has no metrics yet ({run.status})", file=sys.stderr)
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
    store = Store()
    for run_id in args.runs:  # one at a time: each waits up to --grace for its worker's checkpoint
        status = cancel_run(store, run_id, grace=args.grace)
        if status == RunStatus.RUNNING:  # on another host: its worker stops after its next step
            print(f"run {run_id}: cancel requested; its worker on {store.get_run(run_id).host} stops after its next "
                  f"step (`workbench show {run_id}` follows it)", file=sys.stderr)
        else:
            print(f"run {run_id} {status}", file=sys.stderr)
    return 0


def run_dict(r: Run) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "method": r.method, "status": r.status, "device": r.device,
            "pid": r.pid, "step": r.step, "total_steps": r.total_steps, "progress": r.progress,
            "created_at": r.created_at, "started_at": r.started_at, "finished_at": r.finished_at,
            "host": r.host, "heartbeat_at": r.heartbeat_at, "cancel_requested_at": r.cancel_requested_at,
            "job_id": r.job_id, "job_state": r.job_state, "archived_at": r.archived_at,
            "trashed_at": r.trashed_at, "error": r.error, "config": r.config, "notes": r.notes, "tags": r.tags,
            # the stored segments' open end is the run's end once it has ended (None only while it trains)
            "summary": {**r.summary, **({SEGMENTS: [list(span) for span in r.segments]} if r.segments else {})}}
