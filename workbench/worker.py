"""Worker process entry point: `python -m workbench.worker RUN_ID` (a composition root, beside
the CLI and the GUI).

Trains one run (`workbench.engine.execute`) and, once it has ended, lets the scheduler start
what may start now (the study's next run, a queued run waiting for a free slot), so runs and
studies go on with no window open. SIGTERM and SIGINT ask the run to stop at the next step. A
run with `nproc` > 1 or `nnodes` > 1 turns this process into torchrun (same pid), which runs this
module once per rank (`workbench.engine.distributed`); `workbench join` does the same on a run's
other machines.
"""

from __future__ import annotations

import os
import signal
import sys

from workbench.errors import WorkbenchError
from workbench.store import RunStatus, Store


def _schedule_after(store: Store, run_id: int) -> None:
    """Start what this run's end lets start (its study's next runs, queued runs)."""
    from workbench.jobs import Runner
    from workbench.studies.scheduler import tick

    try:
        started = tick(store, Runner(store), run_ended=True, reap=False)
    except WorkbenchError as exc:  # the run itself is recorded; the next scheduler goes on later
        print(f"run {run_id}: could not start the next runs: {exc}", flush=True)
        return
    if started:
        print(f"run {run_id}: run(s) {', '.join(map(str, started))} started after it", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m workbench.worker RUN_ID", file=sys.stderr)
        return 2
    from workbench.engine.execute import execute
    from workbench.engine.trainer import StopFlag

    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    run_id = int(args[0])
    store = Store()
    config = store.get_run(run_id).config
    if (config.get("nproc", 1) > 1 or config.get("nnodes", 1) > 1) and "RANK" not in os.environ:
        from workbench.engine.distributed import become_torchrun
        from workbench.jobs.runner import WORKER_MODULE

        become_torchrun(WORKER_MODULE, run_id, config)
    status = execute(store, run_id, stop)
    if os.environ.get("RANK", "0") == "0":
        print(f"run {run_id} {status}", flush=True)
        _schedule_after(store, run_id)
    return 1 if status == RunStatus.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
