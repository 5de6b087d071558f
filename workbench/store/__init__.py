"""The run database: SQLite in WAL mode through SQLAlchemy 2.x. No torch, no Qt here."""

from workbench.store.schema import RESUMABLE, SCHEMA_VERSION, Artifact, Metric, Run, RunStatus
from workbench.store.store import MetricRow, Store

__all__ = ["RESUMABLE", "SCHEMA_VERSION", "Artifact", "Metric", "MetricRow", "Run", "RunStatus", "Store"]
