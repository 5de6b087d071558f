"""Schema upgrades through Alembic, on databases written by the builds of every earlier schema
version (tests/store/fixtures/make.py made them with those builds' own code): each opens with
its runs, lineage, metrics, artifacts, datasets and studies intact, a copy of the file kept
first; a database from a newer build is refused and left untouched."""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from workbench.errors import StoreError
from workbench.store import SCHEMA_VERSION, Store
from workbench.store.migrate import HEAD, alembic_config

FIXTURES = Path(__file__).parent / "fixtures"


def _columns(path: Path) -> dict[str, set[tuple[str, bool]]]:
    """table -> {(column, nullable)}: what the schema is, however it was made."""
    found = inspect(create_engine(f"sqlite:///{path}"))
    return {t: {(c["name"], c["nullable"]) for c in found.get_columns(t)} for t in found.get_table_names()}


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_every_earlier_database_upgrades_with_its_data(version: int, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / f"v{version}.sqlite", home / "workbench.sqlite")
    store = Store()
    assert store.schema_version() == SCHEMA_VERSION
    runs = {r.name: r for r in store.list_runs()} | {r.name: r for r in store.list_runs(trashed=True)}
    parent, child = runs["parent"], runs["child"]
    assert parent.status == "finished" and parent.summary == {"val/top1": 0.5} and parent.tags == "keep"
    assert store.parents(child.id)["encoder"].id == parent.id and child.error == "boom"
    assert [round(r[4], 6) for r in store.metrics(parent.id)] == [round(1 / (i + 1), 6) for i in range(1, 6)]
    assert store.latest_artifact(parent.id, "checkpoint").step == 10
    assert [d.name for d in store.list_datasets()] == (["photos"] if version >= 2 else [])
    assert [s.name for s in store.list_studies()] == (["sweep"] if version >= 3 else [])
    if version >= 3:
        assert store.study_members(store.list_studies()[0].id)[0].config == {"lr": 0.1}
    assert (child.trashed_at is not None) == (version >= 4)  # the Trash came with version 4
    store.create_run("vit", {})  # and it is usable at once
    store.close()
    backups = list(home.glob(f"workbench.sqlite.schema-{version:04d}-*.bak"))
    if version < SCHEMA_VERSION:
        assert len(backups) == 1
        with sqlite3.connect(backups[0]) as old:
            stamp = ("SELECT version_num FROM alembic_version" if version >= 5  # Alembic's table from version 5
                     else "SELECT value FROM meta WHERE key = 'schema_version'")
            assert int(old.execute(stamp).fetchone()[0]) == version
    else:
        assert backups == []  # nothing to upgrade, nothing copied


def test_the_scripts_make_the_same_schema_as_a_new_database(home: Path, tmp_path: Path) -> None:
    fresh = Store(tmp_path / "fresh.sqlite")
    fresh.close()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "v1.sqlite", home / "workbench.sqlite")
    Store().close()
    upgraded, made = _columns(home / "workbench.sqlite"), _columns(tmp_path / "fresh.sqlite")
    assert upgraded == made


def test_the_scripts_end_at_the_stores_head() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_current_head() == HEAD and int(HEAD) == SCHEMA_VERSION
    assert [s.revision for s in reversed(list(scripts.walk_revisions()))] == [f"{n:04d}" for n in range(1, 8)]


def test_a_database_from_a_newer_build_is_refused_and_untouched(home: Path) -> None:
    Store().close()
    db = home / "workbench.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="newer ViT Workbench .*schema 0099.*was not changed"):
        Store()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before and not list(home.glob("*.bak"))


def test_a_server_database_from_an_earlier_build_upgrades_in_place(pg_url: str, pg_server) -> None:
    """The same scripts upgrade a PostgreSQL store: one made by the build of schema 4 opens with its
    runs and gains what schema 5 added, and it ends with the tables a new server database gets."""
    from alembic import command
    from sqlalchemy import text

    engine = create_engine(pg_url)
    with engine.begin() as conn:  # the database as the build of schema 4 left it
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.execute(text("INSERT INTO runs (name, method, config, status, created_at, step, total_steps, summary, "
                          "notes, tags) VALUES ('old', 'vit', '{}', 'finished', 1.0, 5, 5, '{}', '', 'keep')"))
    store = Store(pg_url)
    assert store.schema_version() == SCHEMA_VERSION
    (run,) = store.list_runs()
    assert (run.name, run.tags, run.heartbeat_at) == ("old", "keep", None)
    store.beat(run.id)  # schema 5's column, usable at once
    fresh = Store(pg_server.create_database("fresh_schema"))

    def columns(url: str) -> dict[str, set[tuple[str, bool]]]:
        found = inspect(create_engine(url))
        return {t: {(c["name"], c["nullable"]) for c in found.get_columns(t)} for t in found.get_table_names()}

    assert columns(pg_url) == columns(fresh.target)
    store.close()
    fresh.close()
    engine.dispose()
