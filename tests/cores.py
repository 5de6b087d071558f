"""The cores each pytest-xdist worker runs on (`-n N`), and the session's cores before a worker
was pinned, for the test servers that stand for a whole machine (the Slurm cluster's node)."""

from __future__ import annotations

import os

_SESSION_CORES = "WORKBENCH_TESTS_CORES"


def session_cores() -> list[int]:
    """The cores the session was given (before `pin_xdist_worker`): empty where the OS has no affinity."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    saved = os.environ.get(_SESSION_CORES)
    return [int(c) for c in saved.split(",")] if saved else sorted(os.sched_getaffinity(0))


def pin_xdist_worker() -> None:
    """Under pytest-xdist, worker i runs on its own 1/N of the cores (or, with more workers than
    cores, on one core), and so does every process it starts: affinity is inherited, and runs size
    their threads by it (`paths.cpus`). Workers training at once then never run more threads than
    a core each: spinning OpenMP threads on shared cores slow every test several times over,
    while one-thread processes sharing a core merely take turns (and fill each other's waits)."""
    name, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    cores = session_cores()
    if not name or not count or not cores:
        return
    os.environ[_SESSION_CORES] = ",".join(map(str, cores))
    n, i = int(count), int(name.removeprefix("gw"))
    os.sched_setaffinity(0, cores[i::n] if n <= len(cores) else [cores[i % len(cores)]])
