"""Schema upgrades of the run database through Alembic: a database made by any earlier build
opens in this one, upgraded in place after a copy of the file is kept beside it; one made by a
newer build is refused and left untouched.

The scripts are `workbench/store/migrations/versions/r*.py`, one per schema version, applied in
order (`render_as_batch`, so SQLite can alter tables). Builds before Alembic kept the version
as `meta.schema_version` (1 to 4), which maps onto the scripts' revisions. A new database is
made from the ORM classes and stamped with the newest revision (the scripts produce the same
tables; tests/store/test_migrations.py checks it). Alembic is imported only to upgrade, so
opening a current database stays quick.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable, Sequence

from sqlalchemy import Connection, Engine, inspect, text

from workbench.errors import StoreError
from workbench.store.schema import Base

VERSIONS = Path(__file__).parent / "migrations" / "versions"
HEAD = "0007"  # the newest script's revision; bump with every new script
SCHEMA_VERSION = int(HEAD)
REVISIONS = [f"{n:04d}" for n in range(1, SCHEMA_VERSION + 1)]
BACKUP_SUFFIX = ".bak"  # workbench.sqlite.schema-0003-20261129-103000.bak: the file before an upgrade
SQLITE_HEADER = b"SQLite format 3\x00"
PREPARE_LOCK = 0x57425350  # the advisory lock key on a server while a process makes or upgrades the schema


def prepare(engine: Engine, path: Path | None, label: str = "the database") -> None:
    """Make a new database, or upgrade an older one (keeping a copy of a SQLite file first);
    refuse a newer one, and a file that is no run database, untouched. `path`: the SQLite file;
    None for a server, where processes starting at once take turns (an advisory lock) and an
    upgrade runs in one transaction (PostgreSQL's DDL is transactional: it all happens or none)."""
    if path is not None:
        check_file(path)
    where = str(path) if path is not None else label
    with engine.begin() as conn:
        if path is None:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PREPARE_LOCK})
        tables = set(inspect(conn).get_table_names())
        if "runs" not in tables:
            Base.metadata.create_all(conn)
            _stamp(conn, HEAD)
            return
        current = current_revision(lambda sql: conn.exec_driver_sql(sql).all(), tables, where)
        if current == HEAD:
            if "alembic_version" not in tables:  # the newest schema, from the build before Alembic
                _stamp(conn, HEAD)
            return
        if current not in REVISIONS:
            raise StoreError(f"{where} was written by a newer ViT Workbench (schema {current}, this build knows up "
                             f"to {HEAD}); upgrade the workbench. {'The file' if path else 'It'} was not changed")
        if path is None:
            _upgrade(conn, current)
            return
    backup = path.with_name(f"{path.name}.schema-{current}-{time.strftime('%Y%m%d-%H%M%S')}{BACKUP_SUFFIX}")
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)  # consistent even with a WAL file beside it
    with engine.begin() as conn:
        _upgrade(conn, current)


def check_file(path: Path) -> None:
    """Refuse a file that is no usable run database before the engine's first connection, which
    would switch it to WAL: not SQLite, damaged, another program's, or with no version it can read."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # a new database (SQLite takes an empty file for one)
    conn = sqlite3.connect(path)  # reading changes nothing; closing removes any WAL files it opened
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if not name.startswith("sqlite_")}
        if tables and "runs" not in tables:
            raise unusable(path, f"is a database of another program (tables: {', '.join(sorted(tables))})")
        if tables:
            current_revision(lambda sql: conn.execute(sql).fetchall(), tables, path)
    except sqlite3.DatabaseError as exc:
        error = damaged(path, exc)
        if error:
            raise error from None
        # anything else (locked, cannot open) the engine's own connection reports as it does for any file
    finally:
        conn.close()


def current_revision(query: Callable[[str], Sequence[tuple]], tables: set[str], path: Path | str) -> str:
    """The database's revision: Alembic's, or the version row of a build before Alembic (each wrote one)."""
    if "alembic_version" in tables:
        rows, missing = query("SELECT version_num FROM alembic_version"), "its alembic_version table is empty"
    else:
        rows = query("SELECT value FROM meta WHERE key = 'schema_version'") if "meta" in tables else []
        missing = "no alembic_version table, and no schema_version row in its meta table"
    if len(rows) != 1:
        raise unusable(path, f"records {len(rows)} schema versions" if rows else
                       f"records no schema version ({missing})")
    value = str(rows[0][0])
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise unusable(path, f"records schema version {value!r}, which no ViT Workbench build writes")
    return f"{int(value):04d}"


def damaged(path: Path, exc: sqlite3.DatabaseError) -> StoreError | None:
    """The error for a file SQLite finds damaged or not SQLite at all; None for any other failure."""
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return None
    with path.open("rb") as f:
        sqlite = f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    return unusable(path, f"is damaged ({exc})" if sqlite else "is not a SQLite database", check=sqlite)


def unusable(path: Path | str, problem: str, *, check: bool = False) -> StoreError:
    """What is wrong with which file, that it was left as it is, and the ways back: the copy kept
    before the last upgrade, SQLite's own check, or an empty database (a server's database: the first)."""
    if not isinstance(path, Path):
        return StoreError(f"{path} {problem}; it was left as it is")
    ways = []
    backups = sorted(path.parent.glob(f"{path.name}.schema-*{BACKUP_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    if backups:
        ways.append(f"put back the copy it kept before its last upgrade: {backups[-1]} (without what came after)")
    if check:
        ways.append(f'see what `sqlite3 {path} "PRAGMA integrity_check"` reports')
    ways.append(f"move {path.name} and runs/ out of {path.parent} to start with an empty database")
    return StoreError(f"{path} {problem}; the file was left as it is. To recover: {'; or '.join(ways)}")


def _stamp(conn, revision: str) -> None:
    conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version "
                      "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    conn.execute(text("DELETE FROM alembic_version"))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})
    conn.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))  # Alembic's table holds it now


def alembic_config():
    """Alembic's configuration for the scripts shipped in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    return config


def _upgrade(conn: Connection, current: str) -> None:
    from alembic import command

    config = alembic_config()
    _stamp(conn, current)  # a database from before Alembic: say where its scripts start
    config.attributes["connection"] = conn  # migrations/env.py runs the scripts on it
    command.upgrade(config, HEAD)
