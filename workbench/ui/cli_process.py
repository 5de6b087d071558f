"""`CliProcess`: run one `workbench …` command in a separate Python, so torch-heavy work
(export, inspection) never loads into the GUI process and never blocks it.

Progress lines (stderr) arrive through `progress`; at exit `done` carries the command's JSON
output, or `failed` its last error line ("error: …" from the CLI) for the user to read.
"""

from __future__ import annotations

import json
import os
import sys

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from workbench import paths


class CliProcess(QObject):
    progress = Signal(str)
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self._errors: list[str] = []

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, args: list[str]) -> None:
        """Run `workbench ARGS` (which must print one JSON document on stdout), replacing any
        command still running."""
        self.stop()
        self._errors = []
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("WORKBENCH_HOME", str(paths.home()))
        if os.environ.get("WORKBENCH_DATASETS"):
            env.insert("WORKBENCH_DATASETS", os.environ["WORKBENCH_DATASETS"])
        process.setProcessEnvironment(env)
        process.readyReadStandardError.connect(lambda p=process: self._read_progress(p))
        process.finished.connect(lambda code, _status, p=process: self._finished(p, code))
        self.process = process
        process.start(sys.executable, ["-m", "workbench.cli", *args])

    def stop(self) -> None:
        if self.running():
            process, self.process = self.process, None
            process.kill()
            process.waitForFinished(2000)

    def _read_progress(self, process: QProcess) -> None:
        text = bytes(process.readAllStandardError()).decode(errors="replace").rstrip()
        if text:
            self._errors += [line for line in text.splitlines() if line.strip()]
            self.progress.emit(text)

    def _finished(self, process: QProcess, code: int) -> None:
        if process is not self.process:  # replaced or stopped: its result is no longer wanted
            return
        out = bytes(process.readAllStandardOutput()).decode(errors="replace").strip()
        if code == 0 and out:
            try:
                self.done.emit(json.loads(out))
                return
            except ValueError:
                pass
        reason = next((line for line in reversed(self._errors) if line.startswith("error:")), None)
        self.failed.emit(reason[len("error:"):].strip() if reason else
                         (self._errors[-1] if self._errors else f"the command exited with code {code}"))
