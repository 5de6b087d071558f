"""The PostgreSQL fixtures give a real server: SQL runs, data round-trips, and each test's
database is its own."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def test_a_real_postgresql_server(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert "PostgreSQL" in conn.execute(text("SELECT version()")).scalar_one()
            conn.execute(text("CREATE TABLE runs (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(text("INSERT INTO runs (name) VALUES (:a), (:b)"), {"a": "vit", "b": "deit ✓"})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM runs ORDER BY id")).scalars().all() == ["vit", "deit ✓"]
            assert conn.execute(text("SHOW server_encoding")).scalar_one() == "UTF8"
    finally:
        engine.dispose()


def test_each_url_is_its_own_database(pg_server: PostgresServer) -> None:
    first, second = pg_server.create_database("own_a"), pg_server.create_database("own_b")
    assert first != second
    engines = [create_engine(first), create_engine(second)]
    try:
        with engines[0].begin() as conn:
            conn.execute(text("CREATE TABLE only_here (x int)"))
        assert inspect(engines[0]).has_table("only_here")
        assert not inspect(engines[1]).has_table("only_here")
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize("turn", [1, 2])
def test_pg_url_is_fresh_per_test(pg_url: str, turn: int) -> None:
    """Both turns create the same table: had they shared a database, the second would find it."""
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() == pg_url.rsplit("/", 1)[1]
            assert not inspect(conn).has_table("per_test")
            conn.execute(text("CREATE TABLE per_test (turn int)"))
    finally:
        engine.dispose()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("death", ["os.abort()", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_a_session_that_dies_leaves_no_server(death: str) -> None:
    """A pytest that aborts (a crash in Qt) or is killed runs no finalizer and no atexit: the
    server, which pg_ctl detached, is still stopped and its directory deleted."""
    code = ("import os, signal, sys\n"
            "from tests.pg_server import PostgresServer, find_pg_bin\n"
            "server = PostgresServer(find_pg_bin()).start()\n"
            "print(server.port, server.tmp, flush=True)\n"
            "sys.stdin.read()\n" + death)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    port_text, tmp_text = child.stdout.readline().split()
    port, tmp = int(port_text), Path(tmp_text)
    assert _accepts(port) and tmp.is_dir()  # it was up when its owner died
    child.communicate("")
    assert child.returncode < 0  # died by a signal, so no Python clean-up ran
    deadline = time.monotonic() + 30
    while (_accepts(port) or tmp.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _accepts(port), "the server outlived the session that started it"
    assert not tmp.exists()
