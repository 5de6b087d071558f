"""The run database through SQLAlchemy 2.x: a SQLite file in WAL mode (the embedded default) or a
PostgreSQL server (a store shared by a team or a cluster). No torch, no Qt here.

Statuses import at once; the SQLAlchemy parts load on first use (PEP 562), so a window can
show before SQLAlchemy is imported.
"""

from typing import Any

from workbench.store.status import RESUMABLE, RunStatus

_LAZY = {"Store": "store", "MetricRow": "metrics", "SCHEMA_VERSION": "migrate", "Artifact": "schema",
         "Metric": "schema", "Run": "schema", "Dataset": "schema",
         "Study": "schema", "StudyStage": "schema", "StudyMember": "schema"}

__all__ = ["RESUMABLE", "RunStatus", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"workbench.store.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'workbench.store' has no attribute {name!r}")
