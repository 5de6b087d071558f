"""Keeping runs tidy from the command line: the Trash (delete, restore, trash --empty), the
archive and tags. Destructive commands ask first on a terminal, and only go ahead with --yes
without one."""

from __future__ import annotations

import argparse
import json
import sys

from workbench import fmt
from workbench.cli.runs import run_dict
from workbench.errors import WorkbenchError
from workbench.jobs import reconcile
from workbench.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    de = sub.add_parser("delete", help="move runs to the Trash (restorable); --for-good deletes them and their files")
    de.add_argument("runs", type=int, nargs="+", metavar="RUN")
    de.add_argument("--for-good", action="store_true", help="delete the runs, their metrics and files (asks first)")
    de.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    de.set_defaults(func=cmd_delete)
    for name, text in (("archive", "archive runs that have ended: hidden from `runs` and the window's list, kept as "
                                    "they are (the safe alternative to delete)"),
                       ("unarchive", "take runs out of the archive")):
        a = sub.add_parser(name, help=text)
        a.add_argument("runs", type=int, nargs="+", metavar="RUN")
        a.set_defaults(func=cmd_archive, archive=name == "archive")
    rs = sub.add_parser("restore", help="take runs out of the Trash")
    rs.add_argument("runs", type=int, nargs="+", metavar="RUN")
    rs.set_defaults(func=cmd_restore)
    tr = sub.add_parser("trash", help="list the runs in the Trash; --empty deletes them for good")
    tr.add_argument("--empty", action="store_true", help="delete every trashed run and its files (asks first)")
    tr.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=cmd_trash)
    rn = sub.add_parser("rename", help="give a run another name: workbench rename 3 'vit, 2-D positions'")
    rn.add_argument("run", type=int)
    rn.add_argument("name", nargs="+", help="the new name (words are joined by spaces)")
    rn.set_defaults(func=cmd_rename)
    tg = sub.add_parser("tag", help="add (+tag) or remove (-tag) tags of a run: workbench tag 3 +baseline -draft")
    tg.add_argument("run", type=int)
    tg.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG")  # "-draft" is no option here
    tg.set_defaults(func=cmd_tag)


def _confirmed(question: str, yes: bool) -> bool:
    """Ask on a terminal; without one, only `--yes` goes ahead (a script never destroys by default)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise WorkbenchError(f"{question} Not asked without a terminal: add --yes to go ahead")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> int:
    from workbench.jobs import delete_for_good, move_to_trash
    from workbench.jobs.trash import deletable, folder_size, staying

    store = Store()
    reconcile(store)
    trashed = move_to_trash(store, args.runs)
    if not args.for_good:
        print(f"run(s) {', '.join(map(str, trashed)) or 'none'} moved to the Trash; `workbench restore` brings "
              f"them back, `workbench trash --empty` deletes them for good", file=sys.stderr)
        return 0
    go, stay = deletable(store, args.runs)
    if stay:
        print(f"{staying(stay)} (name the runs trained from a run too, to delete it)", file=sys.stderr)
    if not go or not _confirmed(f"Delete run(s) {', '.join(map(str, go))} and {folder_size(go) / 2**20:,.1f} MB of "
                                f"files for good?", args.yes):
        print("nothing deleted; the runs are in the Trash", file=sys.stderr)
        return 2 if stay else 1
    gone = delete_for_good(store, go)
    print(f"run(s) {', '.join(map(str, gone))} deleted for good", file=sys.stderr)
    return 2 if stay else 0


def cmd_archive(args: argparse.Namespace) -> int:
    store = Store()
    for run_id in args.runs:
        store.get_run(run_id)  # an unknown id is refused, naming it
    changed = store.set_archived(args.runs, args.archive)
    left = [r for r in args.runs if r not in changed]
    what = "archived (`workbench runs --archived` lists them)" if args.archive else "taken out of the archive"
    print(f"run(s) {', '.join(map(str, changed)) or 'none'} {what}", file=sys.stderr)
    if left:
        why = ("queued, running, in the Trash or archived already" if args.archive else "not archived")
        print(f"run(s) {', '.join(map(str, left))} left as they are: {why}", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from workbench.jobs import restore

    store = Store()
    back = restore(store, args.runs)
    print(f"run(s) {', '.join(map(str, back)) or 'none'} restored", file=sys.stderr)
    left = [r for r in args.runs if r not in back]
    known = store.runs_by_id(left)
    missing = [r for r in left if r not in known]
    if missing:
        print(f"there is no run {', '.join(map(str, missing))}; `workbench trash` lists the runs in the Trash",
              file=sys.stderr)
    if set(left) - set(missing):  # said, as `unarchive` says it
        print(f"run(s) {', '.join(str(r) for r in left if r not in missing)} left as they are: not in the Trash",
              file=sys.stderr)
    return 2 if missing else 0


def cmd_trash(args: argparse.Namespace) -> int:
    from workbench.jobs import delete_for_good
    from workbench.jobs.trash import deletable, folder_size, staying

    store = Store()
    runs = store.list_runs(trashed=True)
    if not args.empty:
        if args.json:
            print(json.dumps([run_dict(r) for r in runs], indent=1))
        for r in [] if args.json else runs:
            print(f"{r.id:>5}  {r.name}  [{r.method}]  {r.status}  trashed {fmt.clock(r.trashed_at)}")
        return 0
    if not runs:
        print("the Trash is empty", file=sys.stderr)
        return 0
    go, stay = deletable(store, [r.id for r in runs])
    if stay:
        print(staying(stay), file=sys.stderr)
    if not go:
        print("nothing deleted", file=sys.stderr)
        return 0
    if not _confirmed(f"Delete {len(go)} of the {len(runs)} run(s) in the Trash and {folder_size(go) / 2**20:,.1f} MB "
                      f"of files for good?", args.yes):
        return 1
    gone = delete_for_good(store, go)
    print(f"run(s) {', '.join(map(str, gone))} deleted for good", file=sys.stderr)
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    print(Store().rename_run(args.run, " ".join(args.name)))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    store = Store()
    if not args.changes:
        raise WorkbenchError(f"say what changes: `workbench tag {args.run} +TAG -TAG` adds TAG, removes TAG")
    bad = [c for c in args.changes if c[:1] not in "+-" or len(c) < 2 or " " in c]
    if bad:
        raise WorkbenchError(f"tags are changed as +TAG or -TAG (no spaces), not {', '.join(bad)}")
    tags = store.edit_tags(args.run, add=[c[1:] for c in args.changes if c[0] == "+"],
                           remove=[c[1:] for c in args.changes if c[0] == "-"])
    print(" ".join(tags))
    return 0
