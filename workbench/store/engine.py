"""The SQLAlchemy engine over the workbench's SQLite file, with the pragmas it needs.

Every process creates its own engine (never shared across a fork). Each connection gets a
busy timeout, WAL journaling (one writer, many readers) and foreign keys (off by default
in SQLite). Writes open with BEGIN IMMEDIATE so a writer waits for the lock up front
instead of failing on a read-to-write upgrade; plain reads run outside a write lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

BUSY_TIMEOUT_S = 30.0


def create_sqlite_engine(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": busy_timeout_s, "isolation_level": "IMMEDIATE", "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: a process crash loses no committed row
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine
