"""The store's queries of a run's life between schedulers and workers (a part of `Store`):
claiming a queued run for this host or for a cluster's queue (one conditional UPDATE each, so two
schedulers never start one run twice), a worker's or a cluster job's start, and liveness
(heartbeats, cancel requests through the database)."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from workbench import paths
from workbench.store.schema import SEGMENTS, SUBMITTING, Run, RunStatus, StudyMember

TOKEN_ENV = "WORKBENCH_WORKER_TOKEN"  # the token of the start a worker is given (`Run.worker_token`)


def new_token() -> str:
    return secrets.token_hex(8)


def held_by(token: str | None) -> dict[str, str | None]:
    """`Store.transition`'s `where` for a write only while `token`'s start holds the run."""
    return {"worker_token": token}


def hold(s: Session, run_id: int, token: str | None) -> bool:
    """Whether `token`'s start holds the run (always, for no token), its row held by `s` until it
    commits: a new start recorded meanwhile waits for the write that follows."""
    return token is None or s.execute(update(Run).where(Run.id == run_id, Run.worker_token == token)
                                      .values(worker_token=token)).rowcount == 1


class Beat(NamedTuple):
    """What a heartbeat found: whether the worker should stop after its step, with a checkpoint
    (a cancel asked for, or the run ended meanwhile: cancelled, judged interrupted); whether the
    run was taken from it (another start holds it now: it stops writing nothing more)."""

    stop: bool
    taken: bool


class RunLifecycle:
    def claim_run(self, run_id: int, *, host: str, limit: int, study_id: int | None = None,
                  study_limit: int | None = None) -> str | None:
        """Mark a queued run running on `host`, only while fewer than `limit` runs run on that host
        (and, for a study's run, fewer than `study_limit` of that study's runs run or wait in a
        cluster's queue). One UPDATE, so the count and the claim cannot be split by another
        scheduler. The claim's token (for the worker it launches) if claimed, else None. Runs
        trained on a cluster do not count against `limit`."""
        running_here = (select(func.count()).select_from(Run)
                        .where(Run.status == RunStatus.RUNNING, Run.job_id.is_(None),
                               or_(Run.host == host, Run.host.is_(None)))
                        .scalar_subquery())
        query = _study_room(update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED, Run.job_id.is_(None),
                                              Run.trashed_at.is_(None), running_here < limit), study_id, study_limit)
        token = new_token()
        return token if self._start(query, run_id, host=host, pid=None, token=token) else None

    def claim_submission(self, run_id: int, *, study_id: int | None = None, study_limit: int | None = None) -> bool:
        """Take a queued run to send to a cluster's queue (its `job_id` becomes `submitting`), within
        its study's `study_limit`: of two schedulers, one sends it. True if taken."""
        query = _study_room(update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED, Run.job_id.is_(None),
                                              Run.trashed_at.is_(None)), study_id, study_limit)
        with self.session() as s:
            self._lock(s, "claim")
            # heartbeat_at: when it was taken, so a claim its scheduler never finished is found (`stale_submissions`)
            return s.execute(query.values(job_id=SUBMITTING, job_state="submitting",
                                          heartbeat_at=_db_now(s))).rowcount == 1

    def stale_submissions(self, older_than: float) -> list[int]:
        """Queued runs taken to be sent to a cluster more than `older_than` seconds ago (by the
        database's clock) and still `submitting`: their scheduler died while sending them."""
        with self.session() as s:
            return list(s.scalars(select(Run.id).where(
                Run.status == RunStatus.QUEUED, Run.job_id == SUBMITTING,
                or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < _db_now(s) - older_than))))

    def settle_submission(self, run_id: int, job_id: str | None, job_state: str | None) -> bool:
        """A claim settled: the job sent for it (`job_id`), or none (None: the run waits to be sent
        again). Only while the run still waits with its claim (not taken by its job, nor ended);
        True if settled."""
        with self.session() as s:
            return s.execute(update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED,
                                               Run.job_id == SUBMITTING)
                             .values(job_id=job_id, job_state=job_state)).rowcount == 1

    def start_job(self, run_id: int, job_id: str, *, host: str, token: str) -> bool:
        """A cluster job's first process takes its run: queued -> running here, only if the run is
        still this job's (not cancelled or resubmitted meanwhile), or still `submitting`: then this
        job is the one its scheduler sent and died before recording. True if taken (by `token`,
        which its worker is given)."""
        query = update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED,
                                  Run.job_id.in_([job_id, SUBMITTING]))
        return self._start(query, run_id, host=host, pid=os.getpid(), token=token, job_id=job_id,
                           job_state="RUNNING")

    def _start(self, query: Any, run_id: int, *, host: str, pid: int | None, token: str, **values: Any) -> bool:
        """Run `query` (an UPDATE of one queued run) as the start of a segment of its training, held
        by `token` (its worker is given it)."""
        now = time.time()
        with self.session() as s:
            self._lock(s, "claim")
            claimed = s.execute(query.values(status=RunStatus.RUNNING, started_at=func.coalesce(Run.started_at, now),
                                             host=host, pid=pid, error=None, heartbeat_at=_db_now(s),
                                             cancel_requested_at=None, worker_token=token,
                                             **values)).rowcount == 1
            if claimed:
                _open_segment(s, run_id, now)
            return claimed

    def running_on(self, host: str) -> int:
        """How many runs run on `host` (or on no recorded host), those of a cluster's jobs aside."""
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(Run).where(
                Run.status == RunStatus.RUNNING, Run.job_id.is_(None), or_(Run.host == host, Run.host.is_(None))))

    def adopt(self, run_id: int) -> str | None:
        """Hold a run by a new token for a worker given none (one trained in-process, by a test or a
        benchmark): a queued run, or a running one no start holds. The token; None if the run has
        ended or another start holds it."""
        token = new_token()
        with self.session() as s:
            held = s.execute(update(Run).where(Run.id == run_id, or_(
                Run.status == RunStatus.QUEUED, and_(Run.status == RunStatus.RUNNING, Run.worker_token.is_(None))))
                .values(worker_token=token)).rowcount == 1
        return token if held else None

    def mark_started(self, run_id: int, *, device: str, token: str) -> bool:
        """The worker's start: its pid, host and device; the run's first start is kept (a resume is
        a segment of its own). False, changing nothing, unless the run is queued or running and
        still held by the worker's `token`: cancelled, or judged gone and started again, while
        this worker started (frozen in its imports, say); it must not train the run."""
        now = time.time()
        with self.session() as s:
            started = s.execute(update(Run).where(Run.id == run_id, Run.worker_token == token,
                                                  Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])).values(
                status=RunStatus.RUNNING, device=device, pid=os.getpid(), host=paths.host(),
                started_at=func.coalesce(Run.started_at, now), error=None, heartbeat_at=_db_now(s))).rowcount == 1
            if started:
                _open_segment(s, run_id, now)
            return started

    # --------------------------------------------------------------- liveness
    def beat(self, run_id: int, token: str | None = None) -> Beat:
        """A worker's heartbeat (the database's clock, so hosts with skewed clocks agree), written
        only while its `token` holds the run: a run judged gone (its machine cut off from the
        database or suspended past the timeout) and started again is another worker's."""
        with self.session() as s:
            row = s.execute(update(Run).where(Run.id == run_id, Run.worker_token == token)
                            .values(heartbeat_at=_db_now(s)).returning(Run.cancel_requested_at, Run.status)).first()
        if row is None:
            return Beat(stop=True, taken=True)
        ended = row.status not in (RunStatus.QUEUED, RunStatus.RUNNING)  # by someone else: still its own to stop
        return Beat(stop=ended or row.cancel_requested_at is not None, taken=False)

    def request_cancel(self, run_id: int) -> bool:
        """Ask a running run's worker, wherever it runs, to stop after its next step; True if asked."""
        with self.session() as s:
            return s.execute(update(Run).where(Run.id == run_id, Run.status == RunStatus.RUNNING,
                                               Run.cancel_requested_at.is_(None))
                             .values(cancel_requested_at=time.time())).rowcount == 1

    def silent_runs(self, timeout: float) -> list[tuple[Run, float]]:
        """Running runs whose last heartbeat is older than `timeout` seconds by the database's
        clock, with the seconds since it (runs that never beat, from a build before heartbeats,
        are not judged here)."""
        with self.session() as s:
            now = _db_now(s)
            rows = s.execute(select(Run, now - Run.heartbeat_at).where(
                Run.status == RunStatus.RUNNING, Run.heartbeat_at.is_not(None), Run.heartbeat_at < now - timeout))
            return [(run, float(age)) for run, age in rows]


def _db_now(s: Session) -> Any:
    """Now in Unix seconds by the database's clock, as an SQL expression (every host reads one clock)."""
    if s.get_bind().dialect.name == "sqlite":
        return (func.julianday("now") - 2440587.5) * 86400.0
    return func.extract("epoch", func.clock_timestamp())


def _study_room(query: Any, study_id: int | None, study_limit: int | None) -> Any:
    """`query` limited to while fewer than `study_limit` of the study's runs run or wait in a
    cluster's queue (unchanged without a limit)."""
    if study_id is None or study_limit is None:
        return query
    others = aliased(Run)
    busy = (select(func.count()).select_from(StudyMember)
            .join(others, others.id == StudyMember.run_id)
            .where(StudyMember.study_id == study_id,
                   or_(others.status == RunStatus.RUNNING,
                       and_(others.status == RunStatus.QUEUED, others.job_id.is_not(None))))
            .scalar_subquery())
    return query.where(busy < study_limit)


def _open_segment(s: Session, run_id: int, now: float) -> None:
    """Start a segment of the run's training time, unless one is open (the scheduler's claim opened
    it, and its worker starts now); `resume_run` closes the last one."""
    run = s.get(Run, run_id)
    spans = run.summary.get(SEGMENTS, [])
    if not spans or spans[-1][1] is not None:
        run.summary = {**run.summary, SEGMENTS: [*spans, [now, None]]}
