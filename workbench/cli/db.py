"""The store itself from the command line: which one is open and what it holds, its settings,
and copying it into another (SQLite to PostgreSQL and back)."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.store import Store
from workbench.store.engine import new_sqlite_file


def add_parsers(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("db", help="the store: info, settings, migrate-to URL")
    dsub = d.add_subparsers(dest="db_command", required=True)
    i = dsub.add_parser("info", help="which store is open (file or server), its schema, rows per table, settings")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    s = dsub.add_parser("set", help="a setting every desktop and worker of the store obeys")
    s.add_argument("--heartbeat-timeout", type=float, metavar="SECONDS",
                   help="a running run whose worker has not beaten for this long is interrupted (default 60)")
    s.add_argument("--max-concurrent", type=int, metavar="N", help="runs training at once per host")
    s.set_defaults(func=cmd_set)
    m = dsub.add_parser("migrate-to", help="copy every run, metric, artifact row, dataset and study into an empty "
                                           "store (PostgreSQL URL or SQLite file); nothing is deleted here")
    m.add_argument("url", help="postgresql+psycopg://user@host/db, or a path to a new SQLite file")
    m.set_defaults(func=cmd_migrate_to)


def cmd_info(args: argparse.Namespace) -> int:
    from workbench.store.transfer import counts

    store = Store()
    info = {"store": store.label, "server": store.server, "artifacts": str(store.root),
            "schema": store.schema_version(), "rows": counts(store),
            "heartbeat_timeout_s": store.heartbeat_timeout(), "max_concurrent": store.max_concurrent()}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{info['store'][0].upper()}{info['store'][1:]} (schema {info['schema']}); run files under {info['artifacts']}")
    print(", ".join(f"{n} {t}" for t, n in info["rows"].items()))
    print(f"heartbeat timeout {info['heartbeat_timeout_s']:g} s; {info['max_concurrent']} runs at once per host")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    store = Store()
    if args.heartbeat_timeout is not None:
        store.set_heartbeat_timeout(args.heartbeat_timeout)
    if args.max_concurrent is not None:
        store.set_max_concurrent(args.max_concurrent)
    print(f"heartbeat timeout {store.heartbeat_timeout():g} s; {store.max_concurrent()} runs at once per host")
    return 0


def cmd_migrate_to(args: argparse.Namespace) -> int:
    from workbench.store.transfer import copy_store

    source = Store()
    made = new_sqlite_file(args.url)
    target = Store(args.url)
    print(f"copying {source.label} into {target.label}", file=sys.stderr)
    shown: list[str] = []

    def progress(table: str, rows: int) -> None:  # one line per table, rewritten as its chunks go in
        print(("\r" if shown[-1:] == [table] else "\n" if shown else "") + f"  {table}: {rows} rows", end="",
              file=sys.stderr, flush=True)
        shown.append(table)

    try:
        copied = copy_store(source, target, progress)
    except BaseException:
        if made is not None:  # a SQLite file made for a copy refused or failed is not left behind
            target.close()
            for leftover in (made, made.with_name(made.name + "-wal"), made.with_name(made.name + "-shm")):
                leftover.unlink(missing_ok=True)
        raise
    print(file=sys.stderr)
    url = target.url.render_as_string(hide_password=True)
    files = (f"Run files stay under {source.root}, which the copy's paths are relative to: with the copy, set "
             f"WORKBENCH_ARTIFACTS={source.root} (where others mount it, on their machines), or its checkpoints "
             f"are looked for under {target.root}" if target.root != source.root else
             f"Run files stay under {source.root}: set WORKBENCH_ARTIFACTS where others mount them")
    print(f"copied and checked: {', '.join(f'{n} {t}' for t, n in copied.items())}; nothing in {source.label} was "
          f"changed. Point the workbench at the copy with WORKBENCH_DB={url} (or --db). {files}")
    return 0
