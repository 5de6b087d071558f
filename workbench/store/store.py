"""`Store`: every read and write of the run database goes through here.

Returned rows are detached ORM objects (plain attribute access, no lazy loads), so callers
never hold a session. Metric reads return plain tuples: the GUI polls them often.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from sqlalchemy import Text, cast, delete, func, select, text, update
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from workbench import paths
from workbench.errors import StoreError, StoreUnreachable
from workbench.store import migrate
from workbench.store.datasets import DatasetQueries
from workbench.store.engine import (
    BUSY_TIMEOUT_S,
    create_store_engine,
    describe,
    parse_url,
)
from workbench.store.lifecycle import RunLifecycle, hold
from workbench.store.metrics import MetricQueries
from workbench.store.schema import (
    Artifact,
    Meta,
    Run,
    RunParent,
    RunStatus,
)
from workbench.store.studies import StudyQueries

MAX_CONCURRENT = "max_concurrent"
DEFAULT_MAX_CONCURRENT = 2
HEARTBEAT_TIMEOUT = "heartbeat_timeout_s"
HEARTBEAT_S = 5.0  # how often a worker says it is alive
RUN_IDS_USED = "run_ids_used"  # the highest id of a run deleted for good: never given again
DEFAULT_HEARTBEAT_TIMEOUT_S = 60.0  # twelve missed heartbeats: a worker is gone, not merely slow


class Store(RunLifecycle, MetricQueries, DatasetQueries, StudyQueries):
    """The run database of one workbench home (metrics', datasets' and studies' queries in their modules)."""

    def __init__(self, target: str | Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        """`target`: an SQLAlchemy URL or a SQLite file; by default `WORKBENCH_DB`, else the SQLite
        file in the workbench home."""
        self.url = parse_url(target or paths.database_url() or paths.db_path())
        self.server = self.url.get_backend_name() != "sqlite"
        self.path = None if self.server else Path(self.url.database)  # the SQLite file
        self.label = describe(self.url)
        self.home = paths.home() if self.server else self.path.parent
        # run files: stored relative to this root, so a desktop that mounts a shared root elsewhere finds them
        self.root = paths.artifacts_root() if os.environ.get("WORKBENCH_ARTIFACTS") else self.home
        self.busy_timeout_s = busy_timeout_s
        self.engine = create_store_engine(self.url, busy_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._translate_errors():
            migrate.prepare(self.engine, self.path, self.label)

    @property
    def target(self) -> str:
        """The URL another process opens this store with (password included: for child processes only)."""
        return self.url.render_as_string(hide_password=False)

    def environment(self) -> dict[str, str]:
        """What a process this one starts (a worker, the CLI) needs in its environment to open
        this same store and write run files under the same root."""
        env = {"WORKBENCH_HOME": str(self.home), "WORKBENCH_DB": self.target}
        if self.root != self.home:
            env["WORKBENCH_ARTIFACTS"] = str(self.root)
        return env

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- plumbing
    @contextlib.contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            if not self.server and ("locked" in str(exc) or "busy" in str(exc)):
                raise StoreError(f"{self.label} stayed locked by another process for "
                                 f"{self.busy_timeout_s:g} s; close other programs using it (another workbench, a DB browser) "
                                 f"and retry") from exc
            if self.server and (exc.connection_invalidated or _unreachable(exc)):
                raise StoreUnreachable(f"{self.label} cannot be reached: {str(exc.orig).strip().splitlines()[0]}") \
                    from exc
            raise StoreError(f"{self.label} cannot be used: {exc.orig}") from exc
        except DatabaseError as exc:  # damaged pages a query ran into after the file opened
            error = None if self.server else migrate.damaged(self.path, exc.orig)
            if error is None:
                raise
            raise error from exc

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success; errors come out as `StoreError` where they are ours."""
        with self._translate_errors(), self._sessions.begin() as session:
            yield session

    def _lock(self, s: Session, name: str) -> None:
        """Serialise a read-then-write step among every process of this store until `s` commits:
        on PostgreSQL a transaction-level advisory lock (READ COMMITTED would let two claims each
        count the other's run as not yet running); SQLite's BEGIN IMMEDIATE already holds the
        one write lock."""
        if self.server:
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})

    # --------------------------------------------------------------- settings
    def max_concurrent(self) -> int:
        """How many runs may train at once on one host (every scheduler of this store obeys it)."""
        with self.session() as s:
            value = s.scalar(select(Meta.value).where(Meta.key == MAX_CONCURRENT))
        return int(value) if value else DEFAULT_MAX_CONCURRENT

    def set_max_concurrent(self, limit: int) -> None:
        if limit < 1:
            raise StoreError(f"the limit of concurrent runs must be at least 1, not {limit}")
        self._set_meta(MAX_CONCURRENT, str(limit))

    def heartbeat_timeout(self) -> float:
        """Seconds without a heartbeat after which a running run's worker counts as gone (every
        desktop and scheduler of this store uses the one value)."""
        with self.session() as s:
            value = s.scalar(select(Meta.value).where(Meta.key == HEARTBEAT_TIMEOUT))
        return float(value) if value else DEFAULT_HEARTBEAT_TIMEOUT_S

    def set_heartbeat_timeout(self, seconds: float) -> None:
        if seconds < 3 * HEARTBEAT_S:
            raise StoreError(f"the heartbeat timeout must be at least {3 * HEARTBEAT_S:g} s (three heartbeats), "
                             f"not {seconds:g}")
        self._set_meta(HEARTBEAT_TIMEOUT, f"{seconds:g}")

    def _set_meta(self, key: str, value: str) -> None:
        with self.session() as s:
            _put_meta(s, key, value)

    def schema_version(self) -> int:
        with self.session() as s:
            return int(s.scalar(text("SELECT version_num FROM alembic_version")))

    # -------------------------------------------------------------------- runs
    def create_run(self, method: str, config: Mapping[str, Any], *, name: str = "",
                   parents: Mapping[str, int] | None = None, tags: str = "") -> Run:
        with self.session() as s:
            return self._insert_run(s, method, config, name, parents or {}, tags)

    def _insert_run(self, s: Session, method: str, config: Mapping[str, Any], name: str,
                    parents: Mapping[str, int], tags: str) -> Run:
        run = Run(method=method, name=name, config=dict(config), status=RunStatus.QUEUED,
                  created_at=time.time(), summary={}, tags=tags)
        used = None if self.server else s.scalar(select(Meta.value).where(Meta.key == RUN_IDS_USED))
        if used:  # SQLite gives the highest id again once its row is gone (PostgreSQL's sequence never does)
            run.id = max(int(used), s.scalar(select(func.max(Run.id))) or 0) + 1
        s.add(run)
        s.flush()
        if not name:
            run.name = f"{method}-{run.id}"
        for role, parent_id in parents.items():
            s.add(RunParent(child_id=run.id, role=role, parent_id=parent_id))
        try:
            s.flush()
        except IntegrityError:
            raise StoreError(f"a parent run among {dict(parents)} does not exist") from None
        return run

    def get_run(self, run_id: int) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"there is no run {run_id} in {self.label}; `workbench runs` lists them")
            return run

    def runs_by_id(self, ids: Sequence[int]) -> dict[int, Run]:
        with self.session() as s:
            return {r.id: r for r in s.scalars(select(Run).where(Run.id.in_(list(ids))))}

    def list_runs(self, *, status: str | Sequence[str] | None = None, method: str | None = None,
                  trashed: bool = False, archived: bool = False) -> list[Run]:
        """Runs oldest first; those in the Trash only with `trashed=True` (and then only those, archived
        or not); archived ones only with `archived=True` (and then only those)."""
        query = _listed(select(Run).order_by(Run.id), trashed, archived)
        if status:
            query = query.where(Run.status.in_([status] if isinstance(status, str) else status))
        if method:
            query = query.where(Run.method == method)
        with self.session() as s:
            return list(s.scalars(query))

    def run_signatures(self, *, trashed: bool = False, archived: bool = False) -> dict[int, tuple]:
        """Id -> a tuple of scalars that changes when what a run list shows of the run changes (the
        summary as undecoded text; the config and the error, which change only with the status, by
        their length), for the runs `list_runs` would give, oldest first: a window re-reads only the
        runs whose tuple changed (thousands of runs, twice a second)."""
        query = _listed(select(Run.id, Run.status, Run.step, Run.total_steps, Run.name, Run.tags, Run.notes,
                               Run.device, Run.job_id, Run.job_state, Run.cancel_requested_at, Run.started_at,
                               Run.finished_at, func.length(Run.error), cast(Run.summary, Text),
                               func.length(cast(Run.config, Text)))
                        .order_by(Run.id), trashed, archived)
        with self.session() as s:
            return {row[0]: tuple(row[1:]) for row in s.execute(query)}

    def update_run(self, run_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(Run).where(Run.id == run_id).values(**values))

    def edit_tags(self, run_id: int, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
        """Add and remove tags (space-separated words) in one transaction; the run's tags after."""
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"there is no run {run_id} in {self.label}; `workbench runs` lists them")
            tags = [t for t in run.tags.split() if t not in remove]
            tags += [t for t in dict.fromkeys(add) if t not in tags]
            run.tags = " ".join(tags)
            return tags

    def rename_run(self, run_id: int, name: str) -> str:
        """Give a run another name (any run, even while it trains: only its label); the name kept."""
        name = " ".join(name.split())
        if not name:
            raise StoreError("a run's name cannot be empty")
        if len(name) > Run.name.type.length:  # PostgreSQL refuses it with its own error; SQLite keeps it
            raise StoreError(f"a run's name is at most {Run.name.type.length} characters; this one has {len(name)}")
        with self.session() as s:
            if s.execute(update(Run).where(Run.id == run_id).values(name=name)).rowcount != 1:
                raise StoreError(f"there is no run {run_id} in {self.label}; `workbench runs` lists them")
        return name

    def transition(self, run_id: int, to: RunStatus, *, only_from: Sequence[RunStatus],
                   where: Mapping[str, Any] | None = None, **values: Any) -> bool:
        """Set the status only if it is still one of `only_from` (so a late writer never undoes a
        cancel or a finish) and the columns in `where` still hold what the caller judged by (the
        pid it found gone: not a worker of the run's next start); True if it changed."""
        query = update(Run).where(Run.id == run_id, Run.status.in_(list(only_from)))
        for column, value in (where or {}).items():
            field = getattr(Run, column)
            query = query.where(field.is_(None) if value is None else field == value)
        with self.session() as s:
            return s.execute(query.values(status=to, **values)).rowcount == 1

    def set_trashed(self, run_ids: Sequence[int], trashed: bool) -> list[int]:
        """Move finished, failed, cancelled or interrupted runs to the Trash (or back); the ids
        that changed. Queued and running runs never go: their workers would write to them."""
        at = time.time() if trashed else None
        with self.session() as s:
            query = update(Run).where(Run.id.in_(list(run_ids)), Run.trashed_at.is_(None) if trashed
                                      else Run.trashed_at.is_not(None))
            if trashed:
                query = query.where(Run.status.not_in([RunStatus.QUEUED, RunStatus.RUNNING]))
            return list(s.scalars(query.values(trashed_at=at).returning(Run.id)))

    def set_archived(self, run_ids: Sequence[int], archived: bool) -> list[int]:
        """Archive runs that have ended (hidden from the default lists, kept as they are), or take them
        out of the archive; the ids that changed. Queued and running runs, and runs in the Trash, stay."""
        at = time.time() if archived else None
        with self.session() as s:
            query = update(Run).where(Run.id.in_(list(run_ids)), Run.trashed_at.is_(None),
                                      Run.archived_at.is_(None) if archived else Run.archived_at.is_not(None))
            if archived:
                query = query.where(Run.status.not_in([RunStatus.QUEUED, RunStatus.RUNNING]))
            return list(s.scalars(query.values(archived_at=at).returning(Run.id)))

    def delete_run(self, run_id: int) -> None:
        """Remove a run's rows for good (metrics, artifacts, lineage); its files are the caller's."""
        with self.session() as s:
            children = list(s.scalars(select(RunParent.child_id).where(RunParent.parent_id == run_id)))
            if children:
                raise StoreError(f"run {run_id} is the parent of run{'s' if len(children) > 1 else ''} "
                                 f"{', '.join(map(str, children))}; delete those first")
            if s.execute(delete(Run).where(Run.id == run_id)).rowcount:  # its id names it in exports, logs, scripts
                used = s.scalar(select(Meta.value).where(Meta.key == RUN_IDS_USED))
                _put_meta(s, RUN_IDS_USED, str(max(run_id, int(used or 0))))

    def parents(self, run_id: int) -> dict[str, Run]:
        with self.session() as s:
            rows = s.execute(select(RunParent.role, Run).join(Run, Run.id == RunParent.parent_id)
                             .where(RunParent.child_id == run_id))
            return {role: run for role, run in rows}

    def children(self, run_id: int) -> list[tuple[str, Run]]:
        with self.session() as s:
            rows = s.execute(select(RunParent.role, Run).join(Run, Run.id == RunParent.child_id)
                             .where(RunParent.parent_id == run_id).order_by(Run.id))
            return [(role, run) for role, run in rows]

    # --------------------------------------------------------------- artifacts
    def add_artifact(self, run_id: int, kind: str, path: Path, *, step: int = 0, name: str = "",
                     meta: Mapping[str, Any] | None = None) -> Artifact:
        with self.session() as s:
            art = Artifact(run_id=run_id, kind=kind, name=name, step=step, path=self._relative(path),
                           created_at=time.time(), meta=dict(meta or {}))
            s.add(art)
            return art

    def keep_file(self, run_id: int, kind: str, path: Path, place: Callable[[], None] = lambda: None, *, step: int,
                  keep: int | None = None, name: str = "", meta: Mapping[str, Any] | None = None,
                  token: str | None = None) -> list[Artifact] | None:
        """Record a file a worker wrote as artifact `kind` (`place()` puts it at `path`, inside the
        transaction), and drop the records of all but the newest `keep` of its kind (returned: their
        files are the caller's to delete). With the worker's `token`, only while that holds the run
        (its row held meanwhile, so a new start waits): None, nothing placed, when another start does."""
        with self.session() as s:
            if not hold(s, run_id, token):
                return None
            place()
            s.add(Artifact(run_id=run_id, kind=kind, name=name, step=step, path=self._relative(path),
                           created_at=time.time(), meta=dict(meta or {})))
            s.flush()
            if keep is None:
                return []
            old = list(s.scalars(select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == kind)
                                 .order_by(Artifact.step, Artifact.id)))[:-keep]
            s.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in old])))
            return old

    def edit_summary(self, run_id: int, edit: Callable[[dict[str, Any]], dict[str, Any]],
                     token: str | None = None) -> bool:
        """Replace the run's summary by `edit` of it, in one transaction (two writers lose neither's
        keys); with a worker's `token`, only while that holds the run. False, nothing changed, if not."""
        with self.session() as s:
            if not hold(s, run_id, token):
                return False
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"there is no run {run_id} in {self.label}")
            run.summary = edit(dict(run.summary))
            return True

    def artifacts(self, run_id: int, kind: str | None = None, *, name: str | None = None) -> list[Artifact]:
        """Artifacts of a run, oldest step first."""
        query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.step, Artifact.id)
        if kind:
            query = query.where(Artifact.kind == kind)
        if name:
            query = query.where(Artifact.name == name)
        with self.session() as s:
            return list(s.scalars(query))

    def latest_artifact(self, run_id: int, kind: str, *, name: str | None = None) -> Artifact | None:
        found = self.artifacts(run_id, kind, name=name)
        return found[-1] if found else None

    def delete_artifacts(self, ids: Sequence[int]) -> None:
        with self.session() as s:
            s.execute(delete(Artifact).where(Artifact.id.in_(list(ids))))

    def abspath(self, artifact: Artifact) -> Path:
        return self.root / artifact.path

    def _relative(self, path: Path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def _put_meta(s: Session, key: str, value: str) -> None:
    if s.execute(update(Meta).where(Meta.key == key).values(value=value)).rowcount == 0:
        s.add(Meta(key=key, value=value))


def _unreachable(exc: OperationalError) -> bool:
    """Whether a server's error is about the connection (refused, lost, timed out, the server
    shutting down: SQLSTATE classes 08 and 57P, or none at all) rather than about the query."""
    state = getattr(exc.orig, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def _listed(query: Any, trashed: bool, archived: bool) -> Any:
    """`query` (of runs) limited to the Trash, or to the archive, or to the runs in neither."""
    query = query.where(Run.trashed_at.is_not(None) if trashed else Run.trashed_at.is_(None))
    return query if trashed else query.where(Run.archived_at.is_not(None) if archived else Run.archived_at.is_(None))
