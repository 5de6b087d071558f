"""Run statuses (no SQLAlchemy here, so the GUI can use them before the database loads)."""

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the worker died without saying so; resumable

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.CANCELLED)
