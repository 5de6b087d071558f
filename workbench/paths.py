"""Where the workbench keeps its database, runs and dataset caches.

`WORKBENCH_DB` names a database server instead of the SQLite file in the home (an SQLAlchemy
URL, `postgresql+psycopg://user@host/db`: a store shared by a team or a cluster), and
`WORKBENCH_ARTIFACTS` a folder for the runs' files instead of the home (a shared file system that
every worker and desktop mounts; stored paths are relative to it, so each may mount it elsewhere).
`WORKBENCH_HOME` overrides the per-user data folder (platformdirs' user data folder:
`~/.local/share/vit-workbench` or `$XDG_DATA_HOME/vit-workbench` on Linux, `~/Library/Application
Support/vit-workbench` on macOS, the local, not roaming, `AppData` on Windows), so tests and
several independent workspaces never share a database by accident.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import platformdirs

from workbench.errors import WorkbenchError

APP = "vit-workbench"


def _earlier_home() -> Path | None:
    """The folder builds before platformdirs used on macOS and Windows (Roaming), if it holds data."""
    if sys.platform == "win32":
        old = Path(os.environ.get("APPDATA", Path.home())) / "ViT Workbench"
    elif sys.platform == "darwin":
        old = Path.home() / "Library" / "Application Support" / "ViT Workbench"
    else:
        return None
    return old if (old / "workbench.sqlite").exists() else None


def home() -> Path:
    """The workbench home folder (created on first use); a file or a read-only folder there is
    refused at once, before the database or a run's files fail on it later."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        path = Path(env).expanduser()
    else:  # a user's existing data stays where it is
        path = _earlier_home() or Path(platformdirs.user_data_dir(APP, appauthor=False, roaming=False))
    fix = "point WORKBENCH_HOME at a folder you can write to"
    if path.exists() and not path.is_dir():
        where = f"WORKBENCH_HOME is {path}, which" if env else f"the workbench home {path}"
        raise WorkbenchError(f"{where} is a file, not a folder; move it aside or {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create the workbench home {path}: {exc.strerror or exc}; {fix}") from None
    if not os.access(path, os.W_OK):  # a read-only mount says so here even to root
        raise WorkbenchError(f"the workbench home {path} cannot be written to (read-only, or not yours); {fix}")
    return path


def host() -> str:
    """This machine's name in the store (`runs.host`): `WORKBENCH_HOST`, else the host name. Set it
    where host names are not stable or not unique (containers, some cluster nodes)."""
    return os.environ.get("WORKBENCH_HOST") or socket.gethostname()


def cpus() -> int:
    """The CPU cores this process may run on: its affinity (set by taskset, a Slurm job's cpuset,
    a container), not the machine's count. Threads and processes sized by it never oversubscribe
    the cores this process was given (spinning OpenMP threads on shared cores slow every run
    several times over). macOS and Windows have no affinity call: the machine's count there."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def db_path() -> Path:
    return home() / "workbench.sqlite"


def database_url() -> str | None:
    """The database server to use (`WORKBENCH_DB`), or None for the SQLite file in the home."""
    return os.environ.get("WORKBENCH_DB") or None


def artifacts_root() -> Path:
    """The folder under which runs keep their files (`runs/000042/...`): `WORKBENCH_ARTIFACTS`, or
    the home. A named root that is missing is refused, never made: an unmounted share would
    otherwise fill the local disk and hide every earlier run's files."""
    env = os.environ.get("WORKBENCH_ARTIFACTS")
    if not env:
        return home()
    path = Path(env).expanduser()
    if not path.is_dir():
        raise WorkbenchError(f"WORKBENCH_ARTIFACTS is {path}, which {'is not a folder' if path.exists() else 'does not exist'}"
                             f" (is the shared file system mounted?); mount or create it, or unset WORKBENCH_ARTIFACTS "
                             f"to keep run files in {home()}")
    if not os.access(path, os.W_OK):
        raise WorkbenchError(f"WORKBENCH_ARTIFACTS is {path}, which cannot be written to; fix its permissions or "
                             f"unset WORKBENCH_ARTIFACTS")
    return path


def run_dir(run_id: int, *, create: bool = True) -> Path:
    """Folder of one run: checkpoints/, images/, exports/ and worker.log."""
    path = artifacts_root() / "runs" / f"{run_id:06d}"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(run_id: int) -> Path:
    """Folder of a run's checkpoints (`step-00000468.pt`); made when the first is written."""
    return run_dir(run_id, create=False) / "checkpoints"


def dataset_cache() -> Path:
    """Generated/downloaded dataset caches; `WORKBENCH_DATASETS` lets several homes share one."""
    env = os.environ.get("WORKBENCH_DATASETS")
    path = Path(env).expanduser() if env else home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path
