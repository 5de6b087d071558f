"""Worker process entry point: `python -m workbench.worker RUN_ID` (a composition root, beside
the CLI and the GUI).

Trains one run (`workbench.engine.execute`) and, once it has ended, lets the scheduler start
what may start now (the study's next run, a queued run waiting for a free slot), so runs and
studies go on with no window open. SIGTERM and SIGINT ask the run to stop at the next step. A
run with `nproc` > 1 or `nnodes` > 1 turns this process into torchrun (same pid), which runs this
module once per rank (`workbench.engine.distributed`); `workbench join` does the same on a run's
other machines. `python -m workbench.worker --spare TOKEN` is a spare worker (`workbench.jobs.runner.Spare`):
it imports first and learns its run from its stdin.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from workbench.errors import WorkbenchError
from workbench.store import RunStatus, Store


def _schedule_after(store: Store, run_id: int) -> None:
    """Start what this run's end lets start (its study's next runs, queued runs)."""
    from workbench.jobs import Runner
    from workbench.jobs.slurm import TASK_ENV
    from workbench.studies.scheduler import tick

    try:  # on a Slurm job's node, only runs for the cluster are sent: a run started here would die with the job
        started = tick(store, Runner(store), run_ended=True, reap=False, here=TASK_ENV not in os.environ)
    except WorkbenchError as exc:  # the run itself is recorded; the next scheduler goes on later
        print(f"run {run_id}: could not start the next runs: {exc}", flush=True)
        return
    if started:
        print(f"run {run_id}: run(s) {', '.join(map(str, started))} started after it", flush=True)


def _spare() -> int | None:
    """Import what training needs, then wait for the run the runner hands over on stdin (one JSON
    line: the run's id, and what its environment adds); from then on write to that run's log. None
    when stdin closes first (the runner no longer wants a spare, or its process ended)."""
    from workbench.engine import trainer  # noqa: F401 - torch, timm: the seconds a spare saves
    from workbench.jobs.processes import log_path
    from workbench.methods import get_method, method_names

    for name in method_names():
        get_method(name)
    order = sys.stdin.readline()
    if not order:
        return None
    order = json.loads(order)
    os.environ.update(order["env"])
    log = os.open(log_path(order["run"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((log, 1), (log, 2), (null, 0)):
        os.dup2(fd, target)
    os.close(log)
    os.close(null)
    return int(order["run"])


def main(argv: list[str] | None = None) -> int:
    from workbench.jobs.processes import SPARE_FLAG

    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == SPARE_FLAG:
        taken = _spare()
        if taken is None:
            return 0
        args = [str(taken)]
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m workbench.worker RUN_ID", file=sys.stderr)
        return 2
    from workbench.engine.execute import StopFlag, execute

    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    run_id = int(args[0])
    store = Store()
    config = store.get_run(run_id).config
    if (config.get("nproc", 1) > 1 or config.get("nnodes", 1) > 1) and "RANK" not in os.environ:
        from workbench.engine.distributed import become_torchrun
        from workbench.jobs.processes import WORKER_MODULE

        become_torchrun(WORKER_MODULE, run_id, config)
    status = execute(store, run_id, stop)
    if os.environ.get("RANK", "0") == "0":
        print(f"run {run_id} {status}", flush=True)
        _schedule_after(store, run_id)
    return 1 if status == RunStatus.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
