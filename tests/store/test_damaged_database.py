"""A run database the store cannot use (not SQLite, damaged pages, another program's, a schema
version no build wrote) is refused with one sentence naming the file and how to recover, through
the real command line, and the file is left exactly as it was."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from workbench.cli import main
from workbench.errors import StoreError
from workbench.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
PAGE = 4096


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's home, in place of conftest's (whose teardown reads the database left behind)."""
    path = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


def _garbage(db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 64)


def _damaged_schema(db: Path) -> None:
    """A real store whose first pages (the table of tables) are overwritten."""
    Store(db).close()
    with db.open("r+b") as f:
        f.seek(100)  # keep the header: the file still says it is SQLite
        f.write(b"\xa5" * (2 * PAGE))


def _legacy_version(value: str | None) -> Callable[[Path], None]:
    """A database of a build before Alembic whose meta row says `value` (None: the row is gone)."""
    def make(db: Path) -> None:
        shutil.copy(FIXTURES / "v1.sqlite", db)
        with sqlite3.connect(db) as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = 'schema_version'")
            else:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
        conn.close()
    return make


def _foreign(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    conn.close()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("make, words", [
    (_garbage, "is not a SQLite database"),
    (_damaged_schema, "is damaged"),
    (_legacy_version("abc"), "schema version 'abc', which no ViT Workbench build writes"),
    (_legacy_version(None), "records no schema version"),
    (_foreign, "is a database of another program (tables: moz_places)"),
], ids=["garbage", "damaged-schema", "version-abc", "no-version-row", "foreign"])
def test_an_unusable_database_is_refused_untouched(home: Path, capsys: pytest.CaptureFixture, make, words: str) -> None:
    home.mkdir(parents=True)
    db = home / "workbench.sqlite"
    make(db)
    before = _snapshot(home)
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {db} ") and words in err and "Traceback" not in err
    assert f"move {db.name} and runs/ out of {home}" in err  # how to start afresh
    assert _snapshot(home) == before  # not a byte changed, no copy, no WAL left beside it
    with pytest.raises(StoreError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Store()


def test_damaged_pages_found_by_a_later_query_name_the_file_and_the_checks(home: Path, capsys) -> None:
    store = Store()
    run = store.create_run("vit", {})
    store.add_metrics(run.id, [(i, i / 10, "train/loss", 1 / (i + 1), 100.0 + i) for i in range(3000)])
    store.close()
    db = store.path
    assert db.stat().st_size > 60 * PAGE
    with db.open("r+b") as f:  # the middle of the metrics table: the file opens, reading the series fails
        f.seek(40 * PAGE)
        f.write(b"\xa5" * (20 * PAGE))
    before = _snapshot(home)
    assert main(["metrics", str(run.id)]) == 2
    err = capsys.readouterr().err
    assert f"error: {db} is damaged (database disk image is malformed)" in err and "Traceback" not in err
    assert f'sqlite3 {db} "PRAGMA integrity_check"' in err
    assert _snapshot(home)[db.name] == before[db.name]  # the store that read it is still open: its WAL is beside


def test_the_copy_kept_before_an_upgrade_is_named(home: Path, capsys) -> None:
    home.mkdir(parents=True)
    db = home / "workbench.sqlite"
    shutil.copy(FIXTURES / "v3.sqlite", db)
    Store().close()  # upgrades, keeping workbench.sqlite.schema-0003-<time>.bak
    (backup,) = home.glob("workbench.sqlite.schema-0003-*.bak")
    _garbage(db)
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert f"copy it kept before its last upgrade: {backup}" in err
    assert backup.stat().st_size > 0 and "Traceback" not in err
