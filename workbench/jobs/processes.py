"""A run's worker process as the operating system shows it: how one is started (its module, its
own session), how a pid is known to be a run's live worker, how its tree is stopped, what its
exit code and log say."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from workbench import paths

WORKER_MODULE = "workbench.worker"
NEW_SESSION = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
               else {"start_new_session": True})
WORKER_MODULES = (WORKER_MODULE, "workbench.jobs.worker")  # a worker started by an earlier build is one too
LOG_NAME = "worker.log"
SPARE_FLAG = "--spare"  # python -m workbench.worker --spare TOKEN: a spare worker, waiting for its run
SPARE_NAME = "worker.spare"  # in a run's folder: the token of the spare that took it (its cmdline names no run)
EXEC_WAIT_S = 1.0  # the longest a live process may show no command line (it is inside execve)


def log_path(run_id: int) -> Path:
    return paths.run_dir(run_id) / LOG_NAME


def _command_line(proc: psutil.Process) -> list[str]:
    """Its arguments. A process inside execve (a worker becoming torchrun, same pid) shows none for
    a moment (Linux sets the new ones after swapping its memory): wait that out rather than call
    it gone. A kernel thread, which has none for good, costs EXEC_WAIT_S."""
    deadline = time.monotonic() + EXEC_WAIT_S
    while not (args := proc.cmdline()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return args


def worker_process(pid: int | None, run_id: int) -> psutil.Process | None:
    """The live (not zombie) worker process of this run, or None (gone, or the pid reused)."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        args = _command_line(proc)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if not any(m in args for m in WORKER_MODULES):
        return None
    if SPARE_FLAG in args:  # a spare: this run's if it holds the token written when it took the run
        try:
            return proc if (paths.run_dir(run_id) / SPARE_NAME).read_text() == args[-1] else None
        except OSError:
            return None
    return proc if str(run_id) in args else None


def is_worker_alive(pid: int | None, run_id: int) -> bool:
    """True if `pid` is a live (not zombie) worker process for this run (on any OS: psutil)."""
    return worker_process(pid, run_id) is not None


def exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def log_tail(run_id: int, lines: int = 15) -> str:
    try:
        text = log_path(run_id).read_text(errors="replace").rstrip().splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(text[-lines:])


def stop_tree(worker: psutil.Process, grace: float) -> None:
    """Ask the worker to stop (SIGTERM, or TerminateProcess on Windows: it checkpoints and exits
    where it can), then kill whatever of its process tree (torchrun ranks, data loaders) is left
    after `grace` seconds."""
    try:
        tree = [worker, *worker.children(recursive=True)]
        worker.terminate()
    except psutil.NoSuchProcess:
        return
    _, alive = psutil.wait_procs([worker], timeout=grace)
    for proc in alive + [p for p in tree[1:] if p.is_running()]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=5)
