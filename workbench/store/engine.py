"""The SQLAlchemy engine over the workbench's database: the SQLite file (the embedded default)
or a PostgreSQL server (a store shared by a team or a cluster), with what each needs.

Every process creates its own engine (never shared across a fork).
- SQLite: each connection gets a busy timeout, WAL journaling (one writer, many readers) and
  foreign keys (off by default in SQLite). Writes open with BEGIN IMMEDIATE so a writer waits for
  the lock up front instead of failing on a read-to-write upgrade.
- PostgreSQL through psycopg 3: a short connect timeout (a lost server is reported within
  seconds, never hangs a caller), connections checked before use (a restarted server or a
  dropped network link costs one retry, not an error), READ COMMITTED; the claims that must not
  race lock rows or take an advisory lock (`Store.claim_run`, `create_member_run`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url

from workbench.errors import StoreError

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5


def parse_url(target: str | Path) -> URL:
    """An SQLAlchemy URL from a URL or a SQLite file path; `postgresql://` means psycopg 3 (the
    only PostgreSQL driver the workbench ships with, as the `postgres` extra)."""
    text = str(target)
    if "://" not in text:
        return make_url(f"sqlite:///{Path(text).expanduser()}")
    try:
        url = make_url(text)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError: says what it could not parse
        raise StoreError(f"{text!r} is not a database URL ({exc}); use e.g. "
                         f"postgresql+psycopg://user@host:5432/workbench or a SQLite file path") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in ("sqlite", "postgresql+psycopg"):
        raise StoreError(f"the workbench stores runs in SQLite or PostgreSQL (postgresql+psycopg://…), "
                         f"not {url.drivername}")
    return url


def new_sqlite_file(target: str | Path) -> Path | None:
    """The SQLite file a store at `target` would make (its file is not there yet); None for a
    SQLite file that exists, an in-memory one, or a server."""
    url = parse_url(target)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        return None if path.exists() else path
    return None


def create_store_engine(url: URL, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    if url.get_backend_name() == "sqlite":
        return create_sqlite_engine(Path(url.database), busy_timeout_s)
    try:
        import psycopg  # noqa: F401  (the optional extra: say how to get it rather than SQLAlchemy's trace)
    except ImportError:
        raise StoreError(f"{describe(url)} needs psycopg 3: pip install -e \".[postgres]\"") from None
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "vit-workbench"})


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


def describe(url: URL) -> str:
    """The store in words for messages and the status bar, never with its password."""
    if url.get_backend_name() == "sqlite":
        return f"the run database {url.database}"
    return f"the PostgreSQL store {url.database} on {address(url)}" + (f" as {url.username}" if url.username else "")


def address(url: URL) -> str:
    """A server's host and port, as people write them: `db.lab:5433`, or `localhost`."""
    return f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}"
