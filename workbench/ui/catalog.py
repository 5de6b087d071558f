"""`Catalog`: what the new-experiment and new-study forms offer and check against — the
registered datasets and the finished runs — read from the store once, on a worker thread, before
a form opens.

The forms re-check their config at every edit (`check_dataset`, the parents' checks, `plan`).
Against the store itself, each edit waited on a query on the GUI thread: a PostgreSQL server
that answers slowly, or not at all, froze the window at every keystroke. The catalog answers
the three reads those checks make (`get_run`, `get_dataset`, `list_datasets`) from memory; what a
form creates is written by the store, on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import StoreError
from workbench.store import Run, RunStatus, Store


@dataclass
class Catalog:
    datasets: list[Any]  # the store's dataset records, by name
    finished: list[Run]  # oldest first: the runs a new run may start from or take as parents

    @classmethod
    def read(cls, store: Store) -> "Catalog":
        return cls(store.list_datasets(), store.list_runs(status=RunStatus.FINISHED))

    def list_datasets(self) -> list[Any]:
        return self.datasets

    def get_dataset(self, name: str) -> Any:
        return next((d for d in self.datasets if d.name == name), None)

    def get_run(self, run_id: int) -> Run:
        """A finished run (a form offers no other as parent or source)."""
        run = next((r for r in self.finished if r.id == run_id), None)
        if run is None:
            raise StoreError(f"run {run_id} is not among the finished runs this form was opened with")
        return run
