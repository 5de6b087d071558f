"""The PostgreSQL fixtures give a real server: SQL runs, data round-trips, and each test's
database is its own."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.pg_server import PostgresServer


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
