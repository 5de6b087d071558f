"""Metric ingest under contention: 8 worker processes log metrics at full rate through the
same `Reporter` the trainer uses (buffered, flushed in batches), while a reader polls the
store like the GUI (run list + incremental metric reads). Prints one JSON line: rows/s with
8 writers, the same for one writer alone (the reference, same run), their ratio, lock
errors (StoreError on a write, retried), rows lost (must be 0) and rows the incremental
reader missed (must be 0).

    python bench/ingest.py [--writers 8] [--rows 100000] [--flush 0.05]
    python bench/ingest.py --db postgresql+psycopg://user@host:5432/db [...]
    python bench/ingest.py --pg-server [...]

With `--db URL` (a PostgreSQL store) or `--pg-server` (a throw-away server on loopback from
tests/pg_server.py, for a machine with none set up) the same measurement runs on that server
and on a temporary SQLite file in the same run, and the JSON line carries both, their ratio,
and a single-writer micro-measurement of PostgreSQL's two ways to write a batch: the
SQLAlchemy insert (psycopg's executemany) and COPY FROM STDIN. The bench's runs are deleted
from a `--db` store at the end. Without either option it measures SQLite alone, as before.

The clock starts when every writer has imported and opened its store (a barrier), so process
start-up (torch's import) is not counted as ingest time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

KEYS = ("train/loss", "train/top1", "train/lr", "train/images_per_s", "train/data_wait")
COPY_SQL = "COPY metrics (run_id, step, epoch, key, value, wall_time) FROM STDIN"
ROOT = Path(__file__).resolve().parents[1]


def write(target: str, index: int, run_id: int, rows: int, flush_seconds: float, counters: Any,
          barrier: Any, finished: Any) -> None:
    """Log `rows` metric values as a training loop would: 5 keys a step, flushed every `flush_seconds`.
    counters: [StoreErrors on a write, flushes that wrote, rows written]."""
    from workbench.engine.reporter import Reporter
    from workbench.errors import StoreError
    from workbench.store import Store

    store = Store(target)  # from the URL, as a worker of that store would

    def counted(method: Callable, *, rows_arg: bool) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
            except StoreError:
                with counters.get_lock():
                    counters[0] += 1
                raise
            if rows_arg and args[1]:
                with counters.get_lock():
                    counters[1] += 1
                    counters[2] += len(args[1])
            return result
        return call

    store.add_metrics = counted(store.add_metrics, rows_arg=True)
    store.update_run = counted(store.update_run, rows_arg=False)
    reporter = Reporter(store, run_id, flush_seconds=flush_seconds)
    barrier.wait()
    for step in range(rows // len(KEYS)):
        reporter.log(step, step / 100, {k: step * 0.001 for k in KEYS})
    while True:
        try:
            reporter.flush()
            break
        except StoreError:  # counted by the wrapper
            time.sleep(0.05)
    finished[index] = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    store.close()


def ingest(store: Any, writers: int, rows: int, flush_seconds: float) -> dict[str, Any]:
    """`writers` processes writing `rows` each while this one polls like the GUI: rows/s, lock
    errors, rows lost (or written twice), rows the incremental reader missed."""
    runs = [store.create_run("vit", {}) for _ in range(writers)]
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("q", 3)
    finished = ctx.Array("d", writers)
    barrier = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=write, args=(store.target, i, r.id, rows, flush_seconds, counters, barrier, finished))
             for i, r in enumerate(runs)]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    start = time.monotonic()
    seen = {r.id: 0 for r in runs}
    last = {r.id: 0 for r in runs}

    def poll() -> None:  # the GUI's poll: run list, then only new metric rows
        store.list_runs()
        for r in runs:
            new = store.metrics(r.id, after_id=last[r.id])
            if new:
                last[r.id] = new[-1][0]
                seen[r.id] += len(new)

    while any(p.is_alive() for p in procs):
        poll()
        time.sleep(0.1)
    for p in procs:
        p.join()
    poll()  # the last rows, as the GUI's next poll would see them
    failed = sum(p.exitcode != 0 for p in procs)
    elapsed = max(finished) - start
    per_run = rows // len(KEYS) * len(KEYS)
    stored = [len(store.metrics(r.id)) for r in runs]
    errors, flushes, written = counters[:]
    for r in runs:
        store.delete_run(r.id)
    return {"rows_per_s": round(writers * per_run / elapsed) if not failed else None,
            "seconds": round(elapsed, 2), "lock_errors": errors, "failed_writers": failed,
            "rows_lost": sum(max(per_run - n, 0) for n in stored),
            "rows_doubled": sum(max(n - per_run, 0) for n in stored),
            "reader_missed": sum(n - seen[r.id] for r, n in zip(runs, stored)),
            "mean_batch_rows": round(written / flushes) if flushes else 0}


def measure(store: Any, writers: int, rows: int, flush_seconds: float) -> dict[str, Any]:
    """The 8-writer measurement and the single-writer reference on one store."""
    many = ingest(store, writers, rows, flush_seconds)
    one = ingest(store, 1, rows, flush_seconds)
    ratio = many["rows_per_s"] / one["rows_per_s"] if many["rows_per_s"] and one["rows_per_s"] else None
    return {"store": store.label, "rows_per_s": many["rows_per_s"], "single_writer_rows_per_s": one["rows_per_s"],
            "ratio": round(ratio, 3) if ratio else None,
            "lock_errors": many["lock_errors"] + one["lock_errors"],
            "failed_writers": many["failed_writers"] + one["failed_writers"],
            "rows_lost": many["rows_lost"] + one["rows_lost"], "rows_doubled": many["rows_doubled"] + one["rows_doubled"],
            "reader_missed": many["reader_missed"] + one["reader_missed"],
            "seconds": many["seconds"], "mean_batch_rows": many["mean_batch_rows"],
            "single_writer_mean_batch_rows": one["mean_batch_rows"]}


# ------------------------------------------------ PostgreSQL: insert vs COPY, one writer
def insert_batch(store: Any, run_id: int, rows: Sequence[tuple]) -> None:
    """What `Store.add_metrics` did before COPY: SQLAlchemy's insert with a list of parameter sets."""
    from sqlalchemy import insert

    from workbench.store.schema import Metric

    with store.session() as s:
        s.execute(insert(Metric), [dict(run_id=run_id, step=st, epoch=ep, key=k, value=v, wall_time=w)
                                   for st, ep, k, v, w in rows])


def copy_batch(store: Any, run_id: int, rows: Sequence[tuple]) -> None:
    """The same rows through COPY FROM STDIN on the session's own psycopg connection (same transaction)."""
    with store.session() as s:
        conn = s.connection().connection.driver_connection
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row((run_id, *row))


def copy_vs_insert(store: Any, sizes: Sequence[int], rows_per_size: int, repeats: int) -> dict[str, Any]:
    """rows/s of one writer committing batches of each size, insert vs COPY, alternated
    `repeats` times (the median kept, so a burst of the machine's other load hits both alike)."""
    run = store.create_run("vit", {})
    now = time.time()
    out: dict[str, Any] = {}
    try:
        for size in sizes:
            batch = [(step // len(KEYS), step / 500, KEYS[step % len(KEYS)], step * 0.001, now) for step in range(size)]
            batches = max(rows_per_size // size, 3)
            rates: dict[str, list[float]] = {"insert": [], "copy": []}
            for _ in range(repeats):
                for name, fn in (("insert", insert_batch), ("copy", copy_batch)):
                    start = time.perf_counter()
                    for _ in range(batches):
                        fn(store, run.id, batch)
                    rates[name].append(batches * size / (time.perf_counter() - start))
            ins, cp = statistics.median(rates["insert"]), statistics.median(rates["copy"])
            out[str(size)] = {"insert_rows_per_s": round(ins), "copy_rows_per_s": round(cp),
                              "copy_vs_insert": round(cp / ins, 2)}
        ids = [r[0] for r in store.metrics(run.id)]
        out["ids_in_insertion_order"] = ids == sorted(ids) and len(ids) == len(set(ids))
    finally:
        store.delete_run(run.id)
    return out


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A database on a fresh PostgreSQL server of tests/pg_server.py (stopped and deleted after)."""
    sys.path.insert(0, str(ROOT))
    from tests.pg_server import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("--pg-server: PostgreSQL is not installed (no pg_ctl); apt-get install postgresql, "
                         "or pass --db URL")
    with PostgresServer(bin_dir) as server:
        yield server.create_database("ingest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=100_000, help="metric values per writer")
    parser.add_argument("--flush", type=float, default=0.05, help="seconds between a writer's flushes")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="URL", help="also measure this PostgreSQL store (postgresql+psycopg://...)")
    where.add_argument("--pg-server", action="store_true",
                       help="also measure a throw-away PostgreSQL server started here (tests/pg_server.py)")
    parser.add_argument("--copy-sizes", default="50,500,5000", help="batch sizes of the insert vs COPY measurement")
    parser.add_argument("--copy-rows", type=int, default=20_000, help="rows per batch size and way, each repeat")
    parser.add_argument("--copy-repeats", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-ingest-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ.pop("WORKBENCH_DB", None)  # every store here is named explicitly
    from workbench.errors import StoreError
    from workbench.store import Store
    from workbench.store.engine import parse_url

    common = {"bench": "ingest", "writers": args.writers, "rows_per_writer": args.rows, "flush_s": args.flush}
    if not (args.db or args.pg_server):
        sqlite = Store(home / "ingest.sqlite")
        result = measure(sqlite, args.writers, args.rows, args.flush)
        print(json.dumps({**common, **{k: v for k, v in result.items() if k != "store"},
                          "target_rows_per_s": 50_000}))
        return
    try:
        if args.db and parse_url(args.db).get_backend_name() == "sqlite":
            raise StoreError("SQLite is measured anyway")
    except StoreError as exc:
        raise SystemExit(f"--db wants a PostgreSQL URL (postgresql+psycopg://...), not {args.db!r}: {exc}") from None
    with contextlib.ExitStack() as stack:
        url = args.db or stack.enter_context(throwaway_server())
        try:
            pg = Store(url)  # first: a wrong URL or a server that is down is said at once
        except StoreError as exc:
            raise SystemExit(f"--db: {exc}") from None
        stack.callback(pg.close)
        with pg.engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        sqlite = Store(home / "ingest.sqlite")
        result = measure(sqlite, args.writers, args.rows, args.flush)
        sqlite.close()
        postgres = {**measure(pg, args.writers, args.rows, args.flush), "server_version": version,
                    "throwaway_server": args.pg_server}
        sizes = [int(n) for n in args.copy_sizes.split(",") if n]
        copy = copy_vs_insert(pg, sizes, args.copy_rows, args.copy_repeats)
    ratio = postgres["rows_per_s"] / result["rows_per_s"] if postgres["rows_per_s"] and result["rows_per_s"] else None
    print(json.dumps({**common, "sqlite": result, "postgres": postgres,
                      "pg_vs_sqlite": round(ratio, 3) if ratio else None,
                      "pg_copy_vs_insert": copy, "target_rows_per_s": 50_000}))


if __name__ == "__main__":
    main()
