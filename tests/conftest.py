"""Shared fixtures: every test gets its own workbench home (database, runs); the generated
dataset cache is shared by the whole session so it is drawn once.

A module marked `pytest.mark.backends` runs each test that uses the store on both backends:
the SQLite file, and a database of its own on a real PostgreSQL server (tests/pg_server.py),
passed to the workers and CLI processes it starts through WORKBENCH_DB. A test marked
`sqlite_only` is about the file itself (locks, damaged pages) and runs on SQLite alone; one marked
`one_backend` trains long for a check whose store queries other tests run on both."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.cores import pin_xdist_worker  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.jobs.processes import is_worker_alive  # noqa: E402
from workbench.store import Store  # noqa: E402
from workbench.studies import advance  # noqa: E402

pytest_plugins = ["tests.pg_fixtures", "tests.slurm_fixtures"]
BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    pin_xdist_worker()
    config.addinivalue_line("markers", "backends: run the module's store tests on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only: a test of the SQLite file itself (in a `backends` module)")
    config.addinivalue_line("markers", "one_backend: a `backends` module's test whose store queries other tests run "
                                       "on PostgreSQL too (a long training run): SQLite only, for the suite's time")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends") \
            and not metafunc.definition.get_closest_marker("sqlite_only") \
            and not metafunc.definition.get_closest_marker("one_backend"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which store this test's `Store()` (and every process it starts) opens."""
    name = getattr(request, "param", "sqlite")
    if name == "postgres":
        monkeypatch.setenv("WORKBENCH_DB", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("WORKBENCH_DB", raising=False)
    return name


@pytest.fixture(autouse=True)
def automatic_collection_given_back() -> None:
    """A window's `Tasks` hands Python's cyclic collection to the GUI thread for the rest of the
    process (tasks.collect_on_gui_thread); each test gives it back, so the next starts as Python does."""
    yield
    gc.enable()


@pytest.fixture(scope="session")
def dataset_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset_cache: Path, backend: str) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    monkeypatch.setenv("WORKBENCH_DATASETS", str(dataset_cache))
    monkeypatch.delenv("WORKBENCH_ARTIFACTS", raising=False)
    yield path
    _kill_workers(path)


def _kill_workers(home: Path) -> None:
    """No worker a test started may outlive it (they would slow every later test)."""
    if os.environ.get("WORKBENCH_DB"):
        try:
            store = Store()
            running = [(r.id, r.pid) for r in store.list_runs(status="running")]
            store.close()
        except WorkbenchError:
            return
    else:
        db = home / "workbench.sqlite"
        if not db.exists():
            return
        try:
            with sqlite3.connect(db) as conn:  # plain sqlite: the test may have left any schema behind
                running = conn.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall()
        except sqlite3.DatabaseError:  # a test's deliberately broken database: no worker could use it
            return
    for run_id, pid in running:
        if is_worker_alive(pid, run_id):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def store(home: Path) -> Store:
    s = Store()
    yield s
    s.close()


@pytest.fixture
def cli(home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real `workbench` command line in a subprocess against this test's home."""
    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ), stdin=subprocess.DEVNULL)
    return run


def wait_for(predicate: Callable[[], bool], timeout: float = 120, interval: float = 0.2) -> None:
    """Poll until `predicate()` is true; fail the test with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def finished_run(store: Store, method: str, **config: object) -> int:
    """A run the store sees as finished, with a checkpoint file on disk (never read: for the
    checks made before anything trains). `config` overrides its tiny preset, unvalidated."""
    from workbench.methods import make_config

    run = store.create_run(method, {**make_config(method, "tiny").to_dict(), **config})
    checkpoint = store.home / "runs" / f"{run.id}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"weights")
    store.add_artifact(run.id, "checkpoint", checkpoint, step=10)
    store.update_run(run.id, status="finished")
    return run.id


def finish_queued_members(store: Store, study_id: int,
                          summary: Callable[[str, dict], dict[str, float] | None], *, then_advance: bool = True) -> int:
    """Finish the study's queued member runs without training: each gets the final results
    `summary(stage, point)` (`point`: its sweep point's values; for a shared stage its seed
    alone, {} without seeds; None leaves it queued) and a checkpoint file, as a trained run
    would; then the study advances (its next stages get queued), unless not `then_advance`. How many
    were finished."""
    stages = {s.id: s.name for s in store.study_stages(study_id)}
    points = store.get_study(study_id).spec["points"]
    done = 0
    for member in store.study_members(study_id):
        run = store.get_run(member.run_id) if member.run_id else None
        point = points[member.point] if member.point is not None else member.values
        if run is None or run.status != "queued" or (values := summary(stages[member.stage_id], point)) is None:
            continue
        checkpoint = store.home / "runs" / f"{run.id}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(b"weights")
        store.add_artifact(run.id, "checkpoint", checkpoint, step=10)
        store.update_run(run.id, status="finished", summary=values)
        done += 1
    if then_advance:
        advance(store, study_id)
    return done
