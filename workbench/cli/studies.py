"""Studies from the command line: start a template or a sweep, follow, list, show, cancel,
resume or delete studies."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from workbench import fmt, studies
from workbench.cli.runs import parse_parents
from workbench.config import PRESETS
from workbench.jobs import Runner, reconcile
from workbench.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("study", help="sweeps and pipelines of runs: the papers' ablations, or your own",
                        description="Run a built-in study (one per template below) or your own sweep; "
                                    "follow, list, cancel, resume or delete studies.")
    st_sub = st.add_subparsers(dest="action", required=True, metavar="TEMPLATE|sweep|list|show|cancel|resume|delete")

    def starting(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                       help="set a field in every stage that has it (dataset=pets, seed=1, device=cuda)")
        p.add_argument("--name", default="", help="a name for the study (default: TEMPLATE-ID)")
        p.add_argument("--parallel", type=int, default=2, help="runs of this study training at once (default 2)")
        p.add_argument("--seeds", type=int, nargs="+", default=[], metavar="SEED",
                       help="repeat every point and every shared stage (a teacher, the ViT from scratch) with each "
                            "seed; the table adds means and sds (e.g. --seeds 0 1 2)")
        p.add_argument("--wait", action="store_true", help="stay attached until it ends, then print the results")
        p.set_defaults(func=cmd_study_start)

    for name, template in studies.TEMPLATES.items():
        t = st_sub.add_parser(name, help=template.description.replace("%", "%%"), description=f"{template.description} "
                                                                           f"Paper: {template.paper_trend}")
        t.add_argument("--budget", choices=list(studies.BUDGETS), default="tiny",
                       help="; ".join(f"{b}: {about}" for b, (_, about) in studies.BUDGETS.items()))
        starting(t)
    sw = st_sub.add_parser("sweep", help="your own sweep of one method over one or two fields",
                           description="e.g. workbench study sweep --method vit --vary lr=1e-4:1e-2:3:log "
                                       "--vary depth=2,4 --preset tiny --wait")
    sw.add_argument("--method", required=True)
    sw.add_argument("--preset", choices=PRESETS, help="every stage starts from this preset (default: defaults)")
    sw.add_argument("--vary", action="append", required=True, metavar="FIELD=VALUES",
                    help="V1,V2,... or START:STOP:COUNT[:log]; twice for a grid of two fields")
    sw.add_argument("--then", nargs="+", default=[], choices=list(studies.FOLLOW_UPS),
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
    out.add_argument("--csv", action="store_true",
                     help="the results table as CSV, then after a blank line the verdicts on the paper's claims")
    out.add_argument("--markdown", action="store_true",
                     help="the results table as Markdown, then the verdicts as a second table")
    sh.set_defaults(func=cmd_study_show)
    for action, text in (("cancel", "stop a study: its queued and running runs are cancelled"),
                         ("resume", "go on with a stopped or cancelled study (runs continue from checkpoints)"),
                         ("delete", "forget a study; its runs stay, as ordinary runs")):
        a = st_sub.add_parser(action, help=text)
        a.add_argument("study", type=int)
        if action == "resume":
            a.add_argument("--wait", action="store_true")
        a.set_defaults(func=cmd_study_control)


def cmd_study_start(args: argparse.Namespace) -> int:
    store = Store()
    reconcile(store)
    common = studies.common_overrides([item for group in args.overrides for item in group])
    if args.action == "sweep":
        axes = [studies.parse_sweep(args.method, text) for text in args.vary]
        spec = studies.sweep_spec(args.method, axes, budget=args.preset, follow_ups=tuple(args.then),
                                  parents=parse_parents(args.parent), common=common, parallel=args.parallel,
                                  study_name=args.name, seeds=args.seeds)
    else:
        spec = studies.template_spec(args.action, args.budget, common=common, parallel=args.parallel,
                                     study_name=args.name, seeds=args.seeds)
    study = studies.create_study(store, spec)
    print(study.id, flush=True)
    view = studies.overview(store, study.id)
    print(f"study {study.id} ({study.name}): {len(view.members)} runs; `workbench study show {study.id}` follows it",
          file=sys.stderr)
    for note in studies.kept_values(spec):
        print(f"note: {note}", file=sys.stderr)
    return _follow_study(store, study.id, args.wait)


def _follow_study(store: Store, study_id: int, wait: bool) -> int:
    """Without --wait: start the first runs (each run's end starts the next). With it: poll,
    print each run as it ends, then the results table; Ctrl-C detaches."""
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
                        f"  {k}={fmt.number(v)}" for k, v in run.results.items()) if run else member.note
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
    """The results as Markdown, then (with repeated seeds) the mean ± sd of each point, then the
    verdicts on the paper's claims."""
    table = studies.results(view)
    means = studies.seed_means(table)
    found = studies.verdicts(table, studies.claims_for(view.study.template))
    return (studies.to_markdown(table) + (f"\nover seeds:\n{studies.to_markdown(means)}" if means else "")
            + (f"\n{studies.verdict_markdown(found)}" if found else ""))


def cmd_study_list(args: argparse.Namespace) -> int:
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
    store = Store()
    reconcile(store)
    view = studies.overview(store, args.study)
    table = studies.results(view)
    found = studies.verdicts(table, studies.claims_for(view.study.template))
    if args.csv or args.markdown:
        print((studies.to_csv_with if args.csv else studies.to_markdown_with)(table, found), end="")
        return 0
    info = _study_dict(view)
    if args.json:
        info["results"] = {"header": table.header, "rows": table.rows}
        info["verdicts"] = [v.as_dict() for v in found]
        info["verdict_rule"] = studies.VERDICT_RULE
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
    store = Store()
    store.get_study(args.study)
    if args.action == "cancel":
        done = studies.cancel_study(store, args.study)
        print(f"study {args.study} cancelled" + (f"; runs {', '.join(map(str, done))} stopped" if done else ""),
              file=sys.stderr)
        return 0
    if args.action == "delete":
        studies.delete_study(store, args.study)
        print(f"study {args.study} deleted; its runs stay (`workbench runs`)", file=sys.stderr)
        return 0
    reconcile(store)
    resumed = studies.resume_study(store, args.study)
    print(f"study {args.study} goes on" + (f" with runs {', '.join(map(str, resumed))}" if resumed else ""),
          file=sys.stderr)
    return _follow_study(store, args.study, args.wait)


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
