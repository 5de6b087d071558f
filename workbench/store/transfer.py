"""Copying a whole store into another (`workbench db migrate-to URL`): SQLite to PostgreSQL when
a lab outgrows one machine, and back. Nothing is deleted from the source.

Rows keep their ids (runs' folders, tags such as `study:3` and lineage name them), in one
transaction on the target, so a copy that fails leaves the target as empty as it was; the
counts of every table are compared before it commits. Metric rows go in chunks, so a store of
millions of rows needs little memory. A server's id sequences are moved past the copied ids.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection, Table, func, insert, select, text

from workbench.errors import StoreError
from workbench.store.schema import Base, Meta, RunStatus
from workbench.store.store import Store

CHUNK = 20_000
# parents before children (foreign keys); alembic_version is the target's own
TABLES = ["meta", "runs", "run_parents", "metrics", "artifacts", "datasets", "studies", "study_stages",
          "study_members"]


def copy_store(source: Store, target: Store, progress: Callable[[str, int], None] = lambda *_: None) -> dict[str, int]:
    """Copy every row of `source` into the empty store `target`; the rows copied per table.
    Refused while a run of the source is running (its worker would go on writing to the source
    only) or when the target holds runs, datasets or studies already."""
    running = source.list_runs(status=RunStatus.RUNNING)
    if running:
        raise StoreError(f"run{'s' if len(running) > 1 else ''} {', '.join(str(r.id) for r in running)} of "
                         f"{source.label} {'are' if len(running) > 1 else 'is'} running; wait for them to end or "
                         f"cancel them, then copy")
    filled = {name: n for name, n in counts(target).items() if name != "meta" and n}
    if filled:
        raise StoreError(f"{target.label} is not empty ({', '.join(f'{n} {t}' for t, n in filled.items())}); "
                         f"copy into a new, empty database")
    tables, copied_rows = Base.metadata.tables, {}
    with source.engine.connect() as src, target.engine.begin() as dst:
        dst.execute(Meta.__table__.delete())  # the target's defaults give way to the source's settings
        for name in TABLES:
            copied_rows[name] = _copy_table(src, dst, tables[name], progress)
            copied = dst.scalar(select(func.count()).select_from(tables[name]))
            if copied != copied_rows[name]:
                raise StoreError(f"copying {name} into {target.label}: {copied_rows[name]} rows read, "
                                 f"{copied} written; nothing was kept")
        if target.server:
            for name in TABLES:
                if "id" in tables[name].c:  # sequences start after the copied ids
                    dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"))
    return copied_rows


def _copy_table(src: Connection, dst: Connection, table: Table, progress: Callable[[str, int], None]) -> int:
    """Copy one table in chunks (by id where it has one); the rows read."""
    if "id" not in table.c:
        rows = [dict(r._mapping) for r in src.execute(select(table))]
        if rows:
            dst.execute(insert(table), rows)
        progress(table.name, len(rows))
        return len(rows)
    done, last = 0, None
    while True:
        query = select(table).order_by(table.c.id).limit(CHUNK)
        if last is not None:
            query = query.where(table.c.id > last)
        rows = [dict(r._mapping) for r in src.execute(query)]
        if not rows:
            return done
        dst.execute(insert(table), rows)
        done, last = done + len(rows), rows[-1]["id"]
        progress(table.name, done)


def counts(store: Store) -> dict[str, int]:
    """Rows per table: what `workbench db info` shows and what a copy is checked against."""
    tables = Base.metadata.tables
    with store.engine.connect() as conn:
        return {name: conn.scalar(select(func.count()).select_from(tables[name])) for name in TABLES}

