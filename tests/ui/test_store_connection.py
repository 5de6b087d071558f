"""The window names the store it opened and rides out a server that goes away: a banner while it
cannot be reached, retries instead of a frozen or crashed window, and everything back once the
server answers again (a real PostgreSQL server, stopped and started). File → Store… keeps the
choice for the next start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from tests.conftest import finished_run
from tests.pg_server import PostgresServer, find_pg_bin
from tests.ui.conftest import poll, settle
from workbench.store import Store
from workbench.ui.connection import apply_settings
from workbench.ui.main_window import MainWindow


def test_the_status_bar_names_the_sqlite_file(window: MainWindow) -> None:
    assert window.connection.label.text() == "store: workbench.sqlite (this machine)"
    assert "Run files under" in window.connection.label.toolTip()


def test_a_lost_server_shows_a_banner_is_retried_and_comes_back(qtbot, home: Path) -> None:
    with PostgresServer(find_pg_bin()) as server:
        store = Store(server.create_database("lab"))
        run = finished_run(store, "vit")
        window = MainWindow(store)
        qtbot.addWidget(window)
        window.load()
        window.timer.stop()
        settle(window)
        assert window.connection.label.text() == f"store: PostgreSQL lab on 127.0.0.1:{server.port}"
        assert window.model.row_of(run) is not None and not window.connection.banner.isVisible()

        server.pause()
        poll(window)
        assert window.connection.offline and not window.connection.banner.isHidden()
        assert "cannot be reached" in window.connection.banner.text()
        assert window.model.row_of(run) is not None  # what it showed stays
        window.poll()  # within the retry interval: the window does not even try
        assert not window.polling
        window.select_run(run)  # the views wait for the store to answer rather than block on it

        server.resume()
        window.connection._retry_at = 0.0  # the retry is due (every RETRY_S seconds)
        poll(window)
        assert not window.connection.offline and window.connection.banner.isHidden()
        assert "answers again" in window.statusBar().currentMessage()
        store.update_run(run, name="renamed while away")
        poll(window)
        assert window.model.run_at(window.model.row_of(run)).name == "renamed while away"
        window.close()
        store.close()


def test_a_store_that_cannot_open_at_start_is_said_and_retried(qtbot, home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    window = MainWindow()
    qtbot.addWidget(window)
    window.load()  # opened on a worker thread: the window stays up, then says why
    qtbot.waitUntil(lambda: not window.connection.banner.isHidden(), timeout=15_000)
    assert not window.loaded
    assert "cannot be reached" in window.connection.banner.text()
    window.close()
    monkeypatch.delenv("WORKBENCH_DB")  # the store would open now, but the window is closed
    qtbot.wait(5500)  # past the retry: a closed window opens nothing, schedules nothing
    assert not window.loaded


def test_a_store_that_opens_on_a_later_try_loads_the_window(qtbot, home: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened on a worker thread and tried again every 5 s: once it opens, the window loads and
    the banner goes."""
    from workbench.ui import until_loaded

    monkeypatch.setenv("WORKBENCH_DB", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    window = MainWindow()
    qtbot.addWidget(window)
    window.load()
    qtbot.waitUntil(lambda: not window.connection.banner.isHidden(), timeout=15_000)
    monkeypatch.delenv("WORKBENCH_DB")  # the next try opens the SQLite store in the home
    assert until_loaded(window, 30) and window.connection.banner.isHidden()
    assert "workbench.sqlite" in window.connection.label.text()
    window.timer.stop()
    settle(window)
    assert window.parallel.isEnabled()  # the store's limit read once it opened
    window.close()


def test_file_store_keeps_the_choice_for_the_next_start(window: MainWindow, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    dialog = window.open_store_settings()
    assert "workbench.sqlite" in dialog.findChildren(type(window.connection.label))[0].text()
    dialog.url.setText("postgresql+psycopg://me@db.lab:5432/workbench")
    dialog.artifacts.setText(str(tmp_path))
    dialog.save()
    assert window.settings.value("store/url") == "postgresql+psycopg://me@db.lab:5432/workbench"
    monkeypatch.setenv("WORKBENCH_DB", "")  # unset for apply_settings, and put back as it was after the test
    monkeypatch.setenv("WORKBENCH_ARTIFACTS", "")
    assert apply_settings(window.settings) == {"WORKBENCH_DB": "postgresql+psycopg://me@db.lab:5432/workbench",
                                               "WORKBENCH_ARTIFACTS": str(tmp_path)}
    assert os.environ["WORKBENCH_DB"].endswith("/workbench")
    monkeypatch.setenv("WORKBENCH_DB", f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    assert "WORKBENCH_DB" not in apply_settings(window.settings)  # the environment wins


def test_cancelling_a_run_of_another_host_shows_cancelling_until_its_worker_stops(window: MainWindow,
                                                                                   store: Store) -> None:
    run = store.create_run("vit", {})
    assert store.claim_run(run.id, host="node-7", limit=1)  # training on another machine
    poll(window)
    window.select_run(run.id)
    window.actions.cancel.trigger()
    window.tasks.wait()
    QApplication.processEvents()  # the cancel's answer: it polls and says what happened
    settle(window)
    assert store.get_run(run.id).cancel_requested_at is not None  # asked through the store, not killed
    status = window.model.index(window.model.row_of(run.id), window.model.columns.index("Status")).data()
    assert status == "cancelling" and "node-7" in window.statusBar().currentMessage()
    store.transition(run.id, "cancelled", only_from=["running"])  # its worker stopped after its step
    poll(window)
    assert window.model.index(window.model.row_of(run.id), window.model.columns.index("Status")).data() == "cancelled"
