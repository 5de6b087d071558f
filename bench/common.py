"""What the method benchmarks share: a throw-away workbench home, and training a tiny run
in-process with its log on stderr (stdout carries only the one JSON line)."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any


def bench_store() -> Any:
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    from workbench.store import Store

    return Store()


def train_tiny(store: Any, method: str, overrides: list[str], parents: dict[str, int] | None = None,
               name: str = "") -> int:
    """Create a run from the method's tiny preset, train it to the end; its id."""
    from workbench.engine.execute import execute
    from workbench.jobs import create_run
    from workbench.store import RunStatus

    run = create_run(store, method, preset="tiny", overrides=overrides, parents=parents, name=name)
    if execute(store, run.id, log=lambda line: print(line, file=sys.stderr)) != RunStatus.FINISHED:
        raise SystemExit(f"{method} run ended {store.get_run(run.id).status}: {store.get_run(run.id).error}")
    return run.id
