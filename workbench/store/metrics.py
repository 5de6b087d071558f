"""The store's queries of metric rows (a part of `Store`): batched writes, COPY on PostgreSQL, and
the incremental and aggregate reads the window polls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from workbench.store.lifecycle import hold
from workbench.store.schema import Artifact, Metric, Run

MetricRow = tuple[int, int, float, str, float, float]  # id, step, epoch, key, value, wall_time

if TYPE_CHECKING:
    import numpy as np


class MetricQueries:
    def add_metrics(self, run_id: int, rows: Sequence[tuple[int, float, str, float, float]]) -> None:
        """Insert (step, epoch, key, value, wall_time) rows in one transaction."""
        with self.session() as s:
            self._insert_metrics(s, run_id, rows)

    def report_progress(self, run_id: int, rows: Sequence[tuple[int, float, str, float, float]], step: int,
                        token: str | None = None) -> bool:
        """A worker's metric rows and the step it reached, in one transaction; with its `token`, only
        while that holds the run (the UPDATE first: it holds the run's row, so a new start recorded
        meanwhile waits for this). False, writing nothing, when another start holds the run (this
        worker was judged gone while its machine was suspended or cut off, and the run started again)."""
        query = update(Run).where(Run.id == run_id)
        if token is not None:
            query = query.where(Run.worker_token == token)
        with self.session() as s:
            if s.execute(query.values(step=step)).rowcount != 1:
                return False
            self._insert_metrics(s, run_id, rows)
        return True

    def _insert_metrics(self, s: Session, run_id: int, rows: Sequence[tuple[int, float, str, float, float]]) -> None:
        """On PostgreSQL through COPY FROM STDIN on the session's own connection: 1.7-2.8x the rows/s
        of SQLAlchemy's batched INSERT at 50-5,000 rows a batch (bench/RESULTS.md); the serial id
        still numbers the rows in insertion order. COPY's psycopg errors are raised as SQLAlchemy's
        (a lost connection invalidated), so `session()` turns them into the same errors as the INSERT's."""
        if not rows:
            return
        if not self.server:
            s.execute(insert(Metric), [dict(run_id=run_id, step=st, epoch=ep, key=k, value=v, wall_time=w)
                                       for st, ep, k, v, w in rows])
            return
        import psycopg
        from sqlalchemy.exc import DBAPIError

        copy_sql = "COPY metrics (run_id, step, epoch, key, value, wall_time) FROM STDIN"
        conn = s.connection()
        driver = conn.connection.driver_connection
        try:
            with driver.cursor() as cur, cur.copy(copy_sql) as copy:
                for st, ep, k, v, w in rows:
                    copy.write_row((run_id, st, ep, k, v, w))
        except psycopg.Error as exc:  # what SQLAlchemy does for the statements it runs itself
            lost = conn.dialect.is_disconnect(exc, driver, None)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(copy_sql, None, exc, psycopg.Error, connection_invalidated=lost,
                                      dialect=conn.dialect) from exc

    def metrics(self, run_id: int, *, after_id: int = 0, key: str | None = None) -> list[MetricRow]:
        """Metric rows of a run newer than `after_id`, in insertion order (for incremental polling)."""
        query = (select(Metric.id, Metric.step, Metric.epoch, Metric.key, Metric.value, Metric.wall_time)
                 .where(Metric.run_id == run_id, Metric.id > after_id).order_by(Metric.id))
        if key:
            query = query.where(Metric.key == key)
        with self.session() as s:
            return [tuple(r) for r in s.execute(query)]

    def metric_columns(self, run_id: int, *, after_id: int = 0) -> tuple[int, dict[str, np.ndarray]]:
        """(id of the newest row read, key -> [n, 4] float64 of (step, epoch, wall_time, value) in
        insertion order) of the run's rows newer than `after_id`: the curves' read. Each key's rows
        go from the driver's cursor straight into numpy, as SQLAlchemy's Row objects cost twice the
        read itself (a 100k-point run: 266 ms through `metrics`, 106 ms so; bench/gui_scale.py)."""
        import numpy as np  # here: the CLI's other commands start without it

        point = np.dtype((np.float64, 4))
        with self.session() as s:
            conn = s.connection()
            top = conn.scalar(select(func.max(Metric.id)).where(Metric.run_id == run_id))
            if top is None or top <= after_id:
                return after_id, {}
            newer = (Metric.run_id == run_id, Metric.id > after_id, Metric.id <= top)
            # a first read lists the keys off the (run_id, key, step) index alone
            keys = conn.scalars(select(Metric.key).where(*newer[:1 if after_id == 0 else 3]).distinct()).all()
            out = {}
            for key in keys:
                result = conn.execute(select(Metric.step, Metric.epoch, Metric.wall_time, Metric.value)
                                      .where(*newer, Metric.key == key).order_by(Metric.id))
                points = np.fromiter(result.cursor, point)  # the DBAPI cursor: tuples, no Row objects
                result.close()
                if len(points):
                    out[key] = points
            return top, out

    def metric_keys(self, run_id: int) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(Metric.key).where(Metric.run_id == run_id).distinct().order_by(Metric.key)))

    def last_metrics(self, run_id: int) -> dict[str, tuple[int, float]]:
        """key -> (step, value) of each metric's newest row."""
        newest = (select(func.max(Metric.id)).where(Metric.run_id == run_id).group_by(Metric.key)).scalar_subquery()
        with self.session() as s:
            rows = s.execute(select(Metric.key, Metric.step, Metric.value).where(Metric.id.in_(newest)))
            return {k: (st, v) for k, st, v in rows}

    def metric_extremes(self, run_id: int, prefix: str = "val/") -> dict[str, tuple[float, float]]:
        """key -> (min, max) over the run's whole series, for keys starting with `prefix`."""
        query = (select(Metric.key, func.min(Metric.value), func.max(Metric.value))
                 .where(Metric.run_id == run_id, Metric.key.startswith(prefix)).group_by(Metric.key))
        with self.session() as s:
            return {k: (lo, hi) for k, lo, hi in s.execute(query)}

    def metric_ranges(self, run_ids: Sequence[int], keys: Sequence[str]) -> dict[int, dict[str, tuple[float, float]]]:
        """run id -> key -> (min, max) of these metrics, for many runs in one query (run table columns)."""
        query = (select(Metric.run_id, Metric.key, func.min(Metric.value), func.max(Metric.value))
                 .where(Metric.run_id.in_(list(run_ids)), Metric.key.in_(list(keys))).group_by(Metric.run_id, Metric.key))
        out: dict[int, dict[str, tuple[float, float]]] = {}
        with self.session() as s:
            for run_id, key, low, high in s.execute(query):
                out.setdefault(run_id, {})[key] = (low, high)
        return out

    def rewind(self, run_id: int, step: int, total_steps: int, kinds: Sequence[str],
               token: str) -> list[Artifact] | None:
        """A resumed run's start: its step and steps in all, and the rows its last attempt wrote after
        `step` (its checkpoint) dropped: metrics, and artifacts of `kinds` (returned: their files are
        the caller's to delete). In one transaction, only while `token` holds the run (None, with
        nothing changed, when another start does)."""
        with self.session() as s:
            if not hold(s, run_id, token):
                return None
            s.execute(update(Run).where(Run.id == run_id).values(step=step, total_steps=total_steps))
            s.execute(delete(Metric).where(Metric.run_id == run_id, Metric.step > step))
            doomed = list(s.scalars(select(Artifact).where(Artifact.run_id == run_id, Artifact.kind.in_(list(kinds)),
                                                           Artifact.step > step)))
            s.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in doomed])))
            return doomed
