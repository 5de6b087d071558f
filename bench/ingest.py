"""Metric ingest under contention: 8 worker processes log metrics at full rate through the
same `Reporter` the trainer uses (buffered, flushed in batches), while a reader polls the
store like the GUI (run list + incremental metric reads). Prints one JSON line: rows/s with
8 writers, the same for one writer alone (the reference, same run), their ratio, lock
errors, and rows lost (must be 0).

    python bench/ingest.py [--writers 8] [--rows 100000] [--flush 0.05]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

KEYS = ("train/loss", "train/top1", "train/lr", "train/images_per_s", "train/data_wait")


def write(db: str, run_id: int, rows: int, flush_seconds: float, errors) -> None:
    """Log `rows` metric values as a training loop would: 5 keys a step, flushed every `flush_seconds`."""
    from workbench.engine.reporter import Reporter
    from workbench.errors import StoreError
    from workbench.store import Store

    store = Store(Path(db))
    reporter = Reporter(store, run_id, flush_seconds=flush_seconds)
    for step in range(rows // len(KEYS)):
        reporter.log(step, step / 100, {k: step * 0.001 for k in KEYS})
    while True:
        try:
            reporter.flush()
            break
        except StoreError:
            errors.value += 1
            time.sleep(0.05)
    store.close()


def ingest(store, writers: int, rows: int, flush_seconds: float) -> tuple[float, int, int]:
    """(rows/s, lock errors, rows lost) for `writers` processes writing `rows` each, a reader polling."""
    runs = [store.create_run("vit", {}) for _ in range(writers)]
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Value("i", 0)
    procs = [ctx.Process(target=write, args=(str(store.path), r.id, rows, flush_seconds, errors)) for r in runs]
    start = time.perf_counter()
    for p in procs:
        p.start()
    seen = {r.id: 0 for r in runs}
    last = {r.id: 0 for r in runs}
    while any(p.is_alive() for p in procs):  # the GUI's poll: run list, then only new metric rows
        store.list_runs()
        for r in runs:
            new = store.metrics(r.id, after_id=last[r.id])
            if new:
                last[r.id] = new[-1][0]
                seen[r.id] += len(new)
        time.sleep(0.1)
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    per_run = rows // len(KEYS) * len(KEYS)
    lost = sum(per_run - len(store.metrics(r.id)) for r in runs)
    return writers * per_run / elapsed, errors.value, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=100_000, help="metric values per writer")
    parser.add_argument("--flush", type=float, default=0.05, help="seconds between a writer's flushes")
    args = parser.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-ingest-")
    from workbench.store import Store

    store = Store()
    many, errors, lost = ingest(store, args.writers, args.rows, args.flush)
    one, one_errors, one_lost = ingest(store, 1, args.rows, args.flush)
    print(json.dumps({"bench": "ingest", "writers": args.writers, "rows_per_writer": args.rows,
                      "rows_per_s": round(many), "single_writer_rows_per_s": round(one),
                      "ratio": round(many / one, 3), "lock_errors": errors + one_errors, "rows_lost": lost + one_lost,
                      "target_rows_per_s": 50_000}))


if __name__ == "__main__":
    main()
