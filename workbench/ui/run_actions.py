"""`RunActions`: what the user does to the selected runs — cancel, resume, archive (and take out),
move to the Trash (and undo), restore, delete for good, export, open the folder — with each action enabled only
where it applies. Destructive steps ask first, listing what goes; slow ones run off the GUI
thread; every outcome is said in the status bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QInputDialog

from workbench import paths
from workbench.errors import NoCheckpointError
from workbench.store import RESUMABLE, RunStatus
from workbench.ui.widgets import confirm, warn

if TYPE_CHECKING:
    from workbench.store import Run
    from workbench.ui.main_window import MainWindow

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def make_action(parent: QObject, text: str, slot: Callable[[], object], shortcut=None, tip: str = "") -> QAction:
    """A QAction that calls `slot()` with no argument (never `triggered`'s `checked` flag)."""
    a = QAction(text, parent)
    a.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    a.setToolTip(tip or text)
    return a


def listing(runs: list[Run], most: int = 12) -> str:
    """'3 · vit-3, 5 · mae-5 and 4 more' for confirmation texts."""
    names = [f"{r.id} · {r.name}" for r in runs[:most]]
    return ", ".join(names) + (f" and {len(runs) - most} more" if len(runs) > most else "")


class RunActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.last_trashed: list[int] = []
        self.cancel = make_action(self, "Cancel", self.cancel_selected, "Ctrl+.", "stop the selected runs (Ctrl+.)")
        self.resume = make_action(self, "Resume", self.resume_selected, "Ctrl+R",
                                  "continue interrupted, failed or cancelled runs (Ctrl+R)")
        self.delete = make_action(self, "Delete…", self.delete_selected, QKeySequence.StandardKey.Delete,
                                  "move the selected runs to the Trash (asks first; restorable)")
        self.undo = make_action(self, "Undo move to Trash", self.undo_trash, QKeySequence.StandardKey.Undo,
                                "restore the runs just moved to the Trash")
        self.restore = make_action(self, "Restore", self.restore_selected, tip="take the selected runs out of the Trash")
        self.purge = make_action(self, "Delete for good…", self.delete_for_good_selected, "Shift+Del",
                                 "delete the selected trashed runs and their files (asks first; cannot be undone)")
        self.empty_trash = make_action(self, "Empty Trash…", self.empty_the_trash,
                                       tip="delete every run in the Trash and its files (asks first)")
        self.archive = make_action(self, "Archive", lambda: self._archive(True), "Ctrl+Shift+A",
                                   "hide the selected ended runs from the list, keeping them as they are "
                                   "(View ▸ Show Archived lists them)")
        self.unarchive = make_action(self, "Unarchive", lambda: self._archive(False),
                                     tip="bring the selected runs back into the list")
        self.export = make_action(self, "Export…", self.export_selected, "Ctrl+E",
                                  "write the selected finished run's model as safetensors, ONNX, .pt2 (Ctrl+E)")
        self.folder = make_action(self, "Open folder", self.open_folder, "Ctrl+O", "open the run's folder (Ctrl+O)")
        self.rename = make_action(self, "Rename…", self.rename_selected, "F2", "give the selected run another name (F2)")

    def update(self, runs: list[Run], trash: bool, archive: bool = False) -> None:
        """Enable what applies to `runs` (the selection), in the run list, the Trash or the archive."""
        self.cancel.setEnabled(any(r.status in ACTIVE for r in runs))
        self.archive.setEnabled(not trash and not archive and bool(runs) and all(r.status not in ACTIVE for r in runs))
        self.archive.setVisible(not archive)
        self.unarchive.setEnabled(archive and bool(runs))
        self.unarchive.setVisible(archive)
        self.resume.setEnabled(not trash and any(r.status in RESUMABLE for r in runs))
        self.delete.setEnabled(not trash and bool(runs) and all(r.status not in ACTIVE for r in runs))
        self.restore.setEnabled(trash and bool(runs))
        self.restore.setVisible(trash)
        self.purge.setEnabled(trash and bool(runs))
        self.purge.setVisible(trash)
        self.undo.setEnabled(bool(self.last_trashed))
        self.export.setEnabled(not trash and bool(runs) and runs[-1].status == RunStatus.FINISHED)
        self.folder.setEnabled(bool(runs))
        self.rename.setEnabled(len(runs) == 1)

    # ------------------------------------------------------------------ jobs
    def cancel_selected(self) -> None:
        from workbench.jobs import cancel_run

        w = self.window
        for run in w.selected_runs():
            if run.status in ACTIVE:
                w.tasks.submit(lambda rid=run.id: cancel_run(w.store, rid),
                               lambda status, r=run: self._cancelled(r, status), w.say)

    def _cancelled(self, run: Run, status: str) -> None:
        w = self.window
        w.poll()
        if status == RunStatus.RUNNING:  # a run of another host: its worker was asked through the store
            w.say(f"Run {run.id}: cancel requested; its worker on {run.host} stops after its current step")

    def resume_selected(self) -> None:
        for run in self.window.selected_runs():
            self._resume(run.id)

    def _resume(self, run_id: int) -> None:
        """Queue a run again (on a worker thread, as every action that writes to the store); one
        with no checkpoint left starts again from step 0 only if the user says yes (the rule is
        `resume_run`'s, as for `workbench resume --from-scratch`)."""
        from workbench.jobs import resume_run

        w = self.window

        def attempt() -> NoCheckpointError | None:
            try:
                resume_run(w.store, run_id)
            except NoCheckpointError as exc:  # a question for the user, on the GUI thread
                return exc
            return None

        def restarted(_: object) -> None:
            w.poll()
            w.say(f"Run {run_id} queued to start again from step 0")

        def answered(refused: NoCheckpointError | None) -> None:
            w.poll()
            if refused is not None and confirm(
                    w, "Start again from step 0?", f"Run {run_id} has no checkpoint left ({refused.why}).",
                    "Start again from step 0", detail="Resuming it can only start it again from step 0, which "
                                                      "replaces its metrics, images and checkpoints as it trains."):
                w.tasks.submit(lambda: resume_run(w.store, run_id, from_scratch=True), restarted, w.say)

        w.tasks.submit(attempt, answered, w.say)

    def _archive(self, archived: bool) -> None:
        """Archive the selected runs that have ended, or take them out (nothing is deleted: no question)."""
        w = self.window
        run_ids = [r.id for r in w.selected_runs()]

        def done(changed: list[int]) -> None:
            w.poll()
            if archived:
                w.say(f"Archived run(s) {', '.join(map(str, changed))}: View ▸ Show Archived lists them" if changed
                      else "Nothing archived: queued and running runs stay in the list")
            else:
                w.say(f"Run(s) {', '.join(map(str, changed))} back in the list" if changed else "Nothing to unarchive")

        w.tasks.submit(lambda: w.store.set_archived(run_ids, archived), done, w.say)

    # ----------------------------------------------------------------- trash
    def delete_selected(self) -> None:
        """Move the selected runs to the Trash, after asking (listing them)."""
        from workbench.jobs import move_to_trash

        w = self.window
        runs = w.selected_runs()
        if not runs or w.runs.showing_trash():
            return
        busy = [r.id for r in runs if r.status in ACTIVE]
        if busy:
            warn(w, "Cannot delete", f"Runs {', '.join(map(str, busy))} are still queued or running; cancel them first.")
            return
        if not confirm(w, "Move to Trash", f"Move {len(runs)} run{'s' if len(runs) > 1 else ''} to the Trash?",
                       "Move to Trash", detail=f"{listing(runs)}.\n\n{'Their' if len(runs) > 1 else 'Its'} metrics, checkpoints and "
                                               f"images stay on disk until you empty the Trash; Edit ▸ Undo, or "
                                               f"Restore in View ▸ Show Trash, brings {'them' if len(runs) > 1 else 'it'} back."):
            return

        def moved(run_ids: list[int]) -> None:
            self.last_trashed = run_ids
            w.poll()
            w.say(f"Moved {len(run_ids)} run(s) to the Trash (Ctrl+Z undoes)")

        w.tasks.submit(lambda: move_to_trash(w.store, [r.id for r in runs]), moved,
                       lambda message: warn(w, "Not moved", message))

    def undo_trash(self) -> None:
        self._restore(self.last_trashed)
        self.last_trashed = []

    def restore_selected(self) -> None:
        self._restore([r.id for r in self.window.selected_runs()])

    def _restore(self, run_ids: list[int]) -> None:
        from workbench.jobs import restore

        w = self.window

        def done(back: list[int]) -> None:
            w.poll()
            w.say(f"Restored run(s) {', '.join(map(str, back))} from the Trash" if back else "Nothing to restore")

        w.tasks.submit(lambda: restore(w.store, run_ids), done, w.say)

    def delete_for_good_selected(self) -> None:
        if self.window.runs.showing_trash():
            runs = self.window.selected_runs()
            self._delete_for_good(lambda: runs)

    def empty_the_trash(self) -> None:
        w = self.window
        if w.ready():
            self._delete_for_good(lambda: w.store.list_runs(trashed=True))

    def _delete_for_good(self, which: Callable[[], list[Run]]) -> None:
        """Delete trashed runs with their files after asking: what goes, its size, and what stays
        (a parent of a run that stays) and why. Read and deleted off the GUI thread."""
        from workbench.jobs.trash import deletable, folder_size

        w = self.window

        def read() -> tuple[list[Run], dict[int, list[int]], float]:
            runs = which()
            go, stay = deletable(w.store, [r.id for r in runs])
            return [r for r in runs if r.id in go], stay, folder_size(go) / 2**20

        w.tasks.submit(read, lambda plan: self._confirm_deletion(*plan), w.say)

    def _confirm_deletion(self, runs: list[Run], stay: dict[int, list[int]], size: float) -> None:
        from workbench.jobs import delete_for_good
        from workbench.jobs.trash import staying

        w = self.window
        if not runs:
            w.say(f"Nothing deleted: {staying(stay)}" if stay else "The Trash is empty")
            return
        if not confirm(w, "Delete for good", f"Delete {len(runs)} run{'s' if len(runs) > 1 else ''} and "
                                             f"{size:,.1f} MB of files for good?", "Delete for good",
                       detail=f"{listing(runs)}.\n\n" + (f"Kept: {staying(stay)}.\n\n" if stay else "")
                              + "Metrics, checkpoints, images and exports are removed. This cannot be undone."):
            return

        def done(gone: list[int]) -> None:
            w.poll()
            w.say(f"Deleted run(s) {', '.join(map(str, gone))} for good" + (f"; {staying(stay)}" if stay else ""))

        w.tasks.submit(lambda: delete_for_good(w.store, [r.id for r in runs]), done,
                       lambda msg: warn(w, "Not deleted", msg))

    def rename_selected(self) -> None:
        w = self.window
        runs = w.selected_runs()
        if len(runs) != 1:
            return
        run = runs[0]
        name, ok = QInputDialog.getText(w, "Rename run", f"A new name for run {run.id} ({run.method}):", text=run.name)
        if not ok or name.strip() == run.name:
            return

        def done(kept: str) -> None:
            w.poll()
            w.say(f"Run {run.id} is now called {kept!r}")

        w.tasks.submit(lambda: w.store.rename_run(run.id, name), done, lambda msg: warn(w, "Not renamed", msg))

    # ----------------------------------------------------------------- files
    def export_selected(self):
        """Open the export dialog for the selected run, if it has finished."""
        from workbench.ui.export_dialog import ExportDialog, weight_choices

        w = self.window
        runs = w.selected_runs()
        if not runs or runs[-1].status != RunStatus.FINISHED:
            w.say("Select a finished run to export.")
            return None
        run = runs[-1]
        choices = w.tasks.result(lambda: weight_choices(w.store, run.id), w.say)
        if choices is None or w.closed:
            return None
        w.export_dialog = ExportDialog(choices, run.id, run.name, w)
        w.export_dialog.finished.connect(lambda _: w.poll())
        w.export_dialog.show()
        return w.export_dialog

    def open_folder(self) -> None:
        for run in self.window.selected_runs()[-1:]:
            folder = paths.run_dir(run.id)
            opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
            self.window.say(f"Opened {folder}" if opened else f"No file manager could open {folder}")
