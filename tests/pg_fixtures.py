"""pytest plugin: one real PostgreSQL server per session (tests/pg_server.py), a fresh database
per test. Registered from tests/conftest.py with `pytest_plugins = ["tests.pg_fixtures"]`."""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from tests.pg_server import PostgresServer, find_pg_bin

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A started server on 127.0.0.1, stopped (and its directory deleted) at the session's end.
    Without PostgreSQL installed this fails, never skips: these tests must run in CI."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed (no pg_ctl in /usr/lib/postgresql/*/bin or on PATH): "
                    "run `apt-get install postgresql`, or `.ci/run`, which installs it", pytrace=False)
    server = PostgresServer(bin_dir)
    request.addfinalizer(server.stop)  # registered first: a half-started server is stopped too
    server.start()
    yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database (t_1, t_2, ...) for this test alone. Nothing is
    dropped: the whole server is thrown away at the session's end."""
    yield pg_server.create_database(f"t_{next(_db_numbers)}")
