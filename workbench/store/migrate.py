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

from sqlalchemy import Engine, inspect, text

from workbench.errors import StoreError
from workbench.store.schema import Base

VERSIONS = Path(__file__).parent / "migrations" / "versions"
HEAD = "0004"  # the newest script's revision; bump with every new script
SCHEMA_VERSION = int(HEAD)
REVISIONS = [f"{n:04d}" for n in range(1, SCHEMA_VERSION + 1)]


def prepare(engine: Engine, path: Path) -> None:
    """Make a new database, or upgrade an older one (keeping a copy first); refuse a newer one."""
    with engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        if "runs" not in tables:
            Base.metadata.create_all(conn)
            _stamp(conn, HEAD)
            return
        current = current_revision(conn, tables)
        if current == HEAD:
            if "alembic_version" not in tables:  # the newest schema, from the build before Alembic
                _stamp(conn, HEAD)
            return
    if current not in REVISIONS:
        raise StoreError(f"{path} was written by a newer ViT Workbench (schema {current}, this build knows up to "
                         f"{HEAD}); upgrade the workbench. The file was not changed")
    backup = path.with_name(f"{path.name}.schema-{current}-{time.strftime('%Y%m%d-%H%M%S')}.bak")
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)  # consistent even with a WAL file beside it
    _upgrade(engine, current)


def current_revision(conn, tables: set[str]) -> str:
    """The database's revision: Alembic's, or the version row of a build before Alembic."""
    if "alembic_version" in tables:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    legacy = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar_one_or_none()
    return f"{int(legacy or 1):04d}"


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


def _upgrade(engine: Engine, current: str) -> None:
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        _stamp(conn, current)  # a database from before Alembic: say where its scripts start
        config.attributes["connection"] = conn  # migrations/env.py runs the scripts on it
        command.upgrade(config, HEAD)
