"""The store's queries of registered datasets (a part of `Store`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import delete, select, update

from workbench.errors import StoreError
from workbench.store.schema import Dataset


class DatasetQueries:
    def add_dataset(self, name: str, kind: str, path: Path, *, val_path: Path | None = None,
                    val_fraction: float = 0.1, stats: Mapping[str, Any] | None = None) -> Dataset:
        with self.session() as s:
            if s.scalar(select(Dataset).where(Dataset.name == name)) is not None:
                raise StoreError(f"a dataset named {name!r} exists already; choose another name or remove it")
            dataset = Dataset(name=name, kind=kind, path=str(path), val_path=str(val_path) if val_path else None,
                              val_fraction=val_fraction, stats=dict(stats or {}), created_at=time.time())
            s.add(dataset)
            return dataset

    def get_dataset(self, name: str) -> Dataset | None:
        with self.session() as s:
            return s.scalar(select(Dataset).where(Dataset.name == name))

    def list_datasets(self) -> list[Dataset]:
        with self.session() as s:
            return list(s.scalars(select(Dataset).order_by(Dataset.name)))

    def update_dataset(self, name: str, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(Dataset).where(Dataset.name == name).values(**values))

    def remove_dataset(self, name: str) -> None:
        with self.session() as s:
            s.execute(delete(Dataset).where(Dataset.name == name))
