"""Database rows (SQLAlchemy 2.x typed models).

Times are Unix seconds (float) so durations are a subtraction and every process agrees.
Every change to these tables comes with a migration script (`workbench/store/migrations`)
and a bump of `migrate.HEAD`: a database made by an older build must open in a newer one.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from workbench.store.status import RunStatus

# entries of a run's summary that are about the run, not results: kept there, so no schema change
SEGMENTS = "segments"  # [[start, end], ...]: each stretch a worker trained it; an open one ends None
WARNINGS = "warnings"  # sentences the run's details show
ENVIRONMENT = "environment"  # {name: version or fact}: the software and machine of the run's last start
SUBMITTING = "submitting"  # runs.job_id while a scheduler sends the run to a cluster's queue


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Meta(Base):
    """Key/value facts about the database itself, such as the schema version."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(32), index=True)
    config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.QUEUED)
    device: Mapped[str | None] = mapped_column(String(32), default=None)
    pid: Mapped[int | None] = mapped_column(default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
    step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # latest value of each evaluation metric, so run lists need no metric scan
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(String(500), default="")
    # in the Trash since then (restorable; its files stay until the Trash is emptied); None: not
    trashed_at: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    # archived since then: kept as it is, only hidden from the default lists (restorable); None: not
    archived_at: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    # the worker's last sign of life (every few seconds, from any host): a stale one means it is gone;
    # of a run being sent to a cluster, when its scheduler took it
    heartbeat_at: Mapped[float | None] = mapped_column(Float, default=None)
    # a cancel asked for through the database (from any host): the worker stops after its next step
    cancel_requested_at: Mapped[float | None] = mapped_column(Float, default=None)
    # a run sent to a cluster's queue: its job there ("slurm:1234"; "submitting" while being sent),
    # and what the cluster last said of it ("PENDING (Priority)"); None for a run trained here
    job_id: Mapped[str | None] = mapped_column(String(64), default=None)
    job_state: Mapped[str | None] = mapped_column(String(200), default=None)
    # the start of the run's training that holds it: a new one at each claim (and a cluster job's
    # start), handed to the worker it starts; only that worker writes to the run. A worker judged
    # gone while alive (its machine suspended), whose run started again, holds it no more.
    worker_token: Mapped[str | None] = mapped_column(String(32), default=None)

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def results(self) -> dict[str, float]:
        """The summary's numbers (metrics, parameter count): what run lists, tables and exports show.
        Its other entries (segments, warnings) are about the run, not results."""
        return {k: v for k, v in self.summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def segments(self) -> list[tuple[float, float | None]]:
        """(start, end) of each stretch a worker trained the run (a resume starts another), oldest
        first; the last one ends at `finished_at` (None while it trains). A run from before segments
        were recorded has one, from `started_at`."""
        stored = self.summary.get(SEGMENTS) or ([[self.started_at, None]] if self.started_at else [])
        spans = [(start, end) for start, end in stored]
        if spans[-1:] and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], self.finished_at)
        return spans

    def closed_segments(self, now: float) -> dict[str, list[list[float]]]:
        """The summary entry with the open segment ended at `now`: for a run about to wait again
        (resumed, or requeued by its cluster); its next worker opens the next one."""
        return {SEGMENTS: [[start, now if end is None else end] for start, end in self.segments]}

    @property
    def training_seconds(self) -> float:
        """Time spent training over every segment; the gaps between them (stopped, queued) do not count."""
        now = time.time()
        return sum((now if end is None else end) - start for start, end in self.segments)

    @property
    def environment(self) -> dict[str, str]:
        """What its worker last started on (`workbench.engine.system.environment`); {} before."""
        return dict(self.summary.get(ENVIRONMENT) or {})

    @property
    def warnings(self) -> list[str]:
        """What went on that the user should know though the run went on (resumed on changed images)."""
        return list(self.summary.get(WARNINGS, []))


class RunParent(Base):
    """Lineage: `child_id` was built from `parent_id` in `role` (teacher, encoder, tokenizer)."""

    __tablename__ = "run_parents"
    child_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"), index=True)


class Metric(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int]
    epoch: Mapped[float] = mapped_column(Float)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_metrics_run_id", "run_id", "id"),  # incremental polling: rows newer than id
        Index("ix_metrics_run_key_step", "run_id", "key", "step"),
    )


class Artifact(Base):
    """A file a run produced: checkpoint, image snapshot, export. `path` is relative to the home."""

    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    step: Mapped[int] = mapped_column(default=0)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_artifacts_run_kind_step", "run_id", "kind", "step"),)


class Dataset(Base):
    """A registered dataset: an image folder (labelled or not) or a CIFAR folder. `stats` holds
    what the last scan found: classes, counts, image sizes, and the files it skipped and why."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    val_path: Mapped[str | None] = mapped_column(Text, default=None)
    val_fraction: Mapped[float] = mapped_column(Float, default=0.1)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class Study(Base):
    """A named group of runs made from one plan: a sweep and/or a pipeline of stages. `spec` keeps
    the plan as created (sweep fields and points, result columns, the paper's trend); `status` is
    `active` or `cancelled` (whether it is finished is read from its members' runs)."""

    __tablename__ = "studies"
    __table_args__ = {"sqlite_autoincrement": True}  # a deleted study's id (its runs' tag) is never reused
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(64), default="")
    budget: Mapped[str] = mapped_column(String(16), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parallel: Mapped[int] = mapped_column(default=2)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[float] = mapped_column(Float)


class StudyStage(Base):
    """One step of a study's pipeline: a method whose parents are earlier stages or existing runs
    (`parents`: role -> {"stage": name} or {"run": id})."""

    __tablename__ = "study_stages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))
    parents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    swept: Mapped[bool] = mapped_column(default=False)
    reference: Mapped[str] = mapped_column(String(64), default="")  # the stage whose columns it fills


class StudyMember(Base):
    """A run a study will make, has made, or could not make. `config` is the validated config it
    runs with; `parents` maps role -> {"member": id} or {"run": id}. `state`: pending (waiting for
    its parents), created (`run_id` is its run) or blocked (`note` says why it was not started)."""

    __tablename__ = "study_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("study_stages.id", ondelete="CASCADE"))
    point: Mapped[int | None] = mapped_column(default=None)  # index of the sweep point; None: shared
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]]
    parents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), default=None,
                                               index=True)
    note: Mapped[str] = mapped_column(Text, default="")
