"""Headless interface: `workbench train | resume | cancel | runs | show | metrics | trash | restore |
tag | rename | limit | export | inspect | datasets | methods | study | db | gui`.

A stable scripting surface: `train` prints only the new run id on stdout (progress goes to
stderr), `runs` and `show` take `--json`, `metrics --csv` prints the full series. Errors the
user can fix print one line and exit with status 2. `WORKBENCH_HOME` selects the data folder;
`--db URL` (or `WORKBENCH_DB`) a database server instead of its SQLite file.
One module per group of commands; each adds its parsers and holds its commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from workbench.cli import data, db, models, runs, studies, tidy
from workbench.errors import WorkbenchError
from workbench.store.engine import new_sqlite_file


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.db:  # every store this command opens, and every worker it starts, uses it
            os.environ["WORKBENCH_DB"] = _existing_store(args.db)
        return args.func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `workbench show 3 | head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")
        return 0


def _existing_store(target: str) -> str:
    """`--db`'s store; a SQLite file that is not there is a typo, not a new store to make silently."""
    missing = new_sqlite_file(target)
    if missing is not None:
        raise WorkbenchError(f"there is no store at {missing}; check the path (a new store is made in a "
                             f"folder of its own: WORKBENCH_HOME=FOLDER workbench ...)")
    return target


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="ViT Workbench, headless.")
    p.add_argument("--db", metavar="URL", help="the store: postgresql+psycopg://user@host/db or a SQLite file "
                                               "(default: WORKBENCH_DB, else the SQLite file in WORKBENCH_HOME)")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (runs, tidy, models, data, studies, db):
        group.add_parsers(sub)
    g = sub.add_parser("gui", help="open the desktop app")
    g.set_defaults(func=lambda _args: __import__("workbench.ui", fromlist=["main"]).main())
    return p
