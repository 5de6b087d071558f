"""The main window's toolbar and menus: its own actions (new, duplicate, store, datasets, studies,
help), the run actions (`RunActions`), and the host's limit of parallel runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar

from workbench.ui import theme
from workbench.ui.run_actions import RunActions, make_action
from workbench.ui.runs_panel import ARCHIVE, TRASH
from workbench.ui.widgets import ParallelRuns

if TYPE_CHECKING:
    from workbench.ui.main_window import MainWindow


def build_menus(window: MainWindow) -> None:
    """Make the window's actions (kept on it: `window.new_action`, `window.actions`, ...), its
    toolbar and its menu bar."""
    window.actions = act = RunActions(window)
    window.new_action = make_action(window, "New experiment…", window.new_run, QKeySequence.StandardKey.New,
                                    "set up and start a new run (Ctrl+N)")
    window.duplicate_action = make_action(window, "Duplicate…", window.duplicate_run, "Ctrl+D",
                                          "a new run starting from the selected run's config (Ctrl+D)")
    refresh = make_action(window, "Refresh", window.poll, QKeySequence.StandardKey.Refresh)
    trash = make_action(window, "Show Trash", lambda: window.status_filter.setCurrentText(TRASH))
    archived = make_action(window, "Show Archived", lambda: window.status_filter.setCurrentText(ARCHIVE))
    window.datasets_action = make_action(window, "Datasets…", window.open_datasets, "Ctrl+Shift+D",
                                         "browse, add and preview datasets (your own image folders, CIFAR)")
    window.studies_action = make_action(window, "Studies…", window.open_studies, "Ctrl+Shift+S",
                                        "sweeps and pipelines: reproduce a paper's ablation, or sweep your own "
                                        "fields")
    about = make_action(window, "About ViT Workbench", window.about)
    readme = make_action(window, "README", window.open_readme, QKeySequence.StandardKey.HelpContents)
    quit_action = make_action(window, "Quit", window.close, QKeySequence.StandardKey.Quit)
    window.store_action = make_action(window, "Store…", window.open_store_settings, None,
                                      "which store to open (the SQLite file here, or a PostgreSQL server shared "
                                      "by a team or a cluster) and where run files go")
    window.parallel = ParallelRuns()

    bar = QToolBar("Runs")
    bar.setMovable(False)
    window.addToolBar(bar)
    for a in (window.new_action, window.duplicate_action, act.cancel, act.resume, act.archive, act.unarchive,
              act.delete, act.restore, act.purge, act.export, act.folder, window.datasets_action,
              window.studies_action):
        bar.addAction(a)
    bar.addSeparator()
    bar.addWidget(QLabel(" parallel runs "))
    bar.addWidget(window.parallel)
    menus = {}
    for title, actions in (("&File", (window.new_action, window.duplicate_action, None, window.store_action, None,
                                      quit_action)),
                           ("&Edit", (act.undo, None, act.rename)),
                           ("&Run", (act.cancel, act.resume, None, act.archive, act.unarchive, act.delete, None,
                                     act.restore, act.purge, act.empty_trash, None, act.export, act.folder)),
                           ("&Data", (window.datasets_action,)), ("&Studies", (window.studies_action,)),
                           ("&View", (refresh, trash, archived)), ("&Help", (readme, about))):
        menu = menus[title] = window.menuBar().addMenu(title)
        for a in actions:
            if a is None:
                menu.addSeparator()
            else:
                menu.addAction(a)
    window.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)  # a right-click on the runs
    for a in (act.rename, window.duplicate_action, None, act.cancel, act.resume, act.archive, act.unarchive,
              act.delete, act.restore, act.purge, None, act.export, act.folder):
        window.table.addAction(a if a is not None else _separator(window))
    themes = menus["&View"].addMenu("Theme")
    group = QActionGroup(window)
    window.theme_actions = {}
    for name in theme.THEMES:
        a = make_action(window, name.capitalize(), lambda n=name: window.set_theme(n),
                        tip=f"{name}: " + {"system": "the desktop's own look", "light": "light plots and panels",
                                          "dark": "dark plots and panels"}[name])
        a.setCheckable(True)
        group.addAction(a)
        themes.addAction(a)
        window.theme_actions[name] = a
    window.theme_actions[window.theme_name()].setChecked(True)


def _separator(parent: QObject) -> QAction:
    line = QAction(parent)
    line.setSeparator(True)
    return line
