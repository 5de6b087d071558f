"""Deleting runs in two steps, as trackers do: the Trash first (hidden everywhere, restorable,
files kept), then for good (rows and files). Every front end calls these, so the rules hold
whichever asks: active runs never go, a parent never goes before its children."""

from __future__ import annotations

import shutil
from typing import Sequence

from workbench import paths
from workbench.errors import WorkbenchError
from workbench.store import Run, RunStatus, Store


def move_to_trash(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Trash these runs (none of them may be queued or running); the ids moved."""
    runs = store.runs_by_id(run_ids)
    missing = sorted(set(run_ids) - set(runs))
    if missing:
        raise WorkbenchError(f"there is no run {', '.join(map(str, missing))}; `workbench runs` lists them")
    busy = [r.id for r in runs.values() if r.status in (RunStatus.QUEUED, RunStatus.RUNNING)]
    if busy:
        raise WorkbenchError(f"run{'s' if len(busy) > 1 else ''} {', '.join(map(str, busy))} "
                             f"{'are' if len(busy) > 1 else 'is'} still queued or running; cancel first")
    return store.set_trashed(list(runs), True)


def restore(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Take these runs out of the Trash; the ids restored."""
    return store.set_trashed(run_ids, False)


def folder_size(run_ids: Sequence[int]) -> int:
    """Bytes the runs' folders hold (what deleting them for good frees)."""
    total = 0
    for run_id in run_ids:
        folder = paths.run_dir(run_id, create=False)
        total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0
    return total


def deletable(store: Store, run_ids: Sequence[int]) -> tuple[list[int], dict[int, list[int]]]:
    """Which of these runs can be deleted for good, and which stay (id -> the children that keep
    it): a parent stays while a run trained from it stays (outside the Trash, or kept in it)."""
    ids = set(run_ids)
    children = {rid: {c.id for _, c in store.children(rid)} for rid in ids}
    stay: dict[int, list[int]] = {}
    while True:  # a run kept keeps its parents in turn
        more = {rid: sorted(kids - (ids - set(stay))) for rid, kids in children.items()
                if rid not in stay and kids - (ids - set(stay))}
        if not more:
            return sorted(ids - set(stay)), stay
        stay |= more


def staying(stay: dict[int, list[int]]) -> str:
    """The runs that stay in the Trash and why, as a sentence ('' when none)."""
    return "; ".join(f"run {rid} stays in the Trash: run{'s' if len(kids) > 1 else ''} {', '.join(map(str, kids))} "
                     f"{'were' if len(kids) > 1 else 'was'} trained from it" for rid, kids in sorted(stay.items()))


def delete_for_good(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Delete trashed runs with their metrics, artifacts and folders, children before parents.
    A run that is the parent of a run not being deleted is refused (its lineage would break)."""
    runs = store.runs_by_id(run_ids)
    not_trashed = [r.id for r in runs.values() if r.trashed_at is None]
    if not_trashed:
        raise WorkbenchError(f"run{'s' if len(not_trashed) > 1 else ''} {', '.join(map(str, not_trashed))} "
                             f"{'are' if len(not_trashed) > 1 else 'is'} not in the Trash; only trashed runs are "
                             f"deleted for good")
    kept_children = {rid: [c.id for _, c in store.children(rid) if c.id not in runs] for rid in runs}
    refused = {rid: kids for rid, kids in kept_children.items() if kids}
    if refused:
        raise WorkbenchError("; ".join(f"run {rid} is the parent of run {', '.join(map(str, kids))}"
                                       for rid, kids in refused.items())
                             + ": delete those with it, or keep it")
    deleted = []
    for run in _children_first(list(runs.values()), store):
        store.delete_run(run.id)
        folder = paths.run_dir(run.id, create=False)
        try:
            if folder.exists():
                shutil.rmtree(folder)
        except OSError as exc:
            raise WorkbenchError(f"run {run.id} was deleted, but its folder {folder} could not be removed "
                                 f"({exc}); remove it by hand") from None
        deleted.append(run.id)
    return deleted


def _children_first(runs: list[Run], store: Store) -> list[Run]:
    """Order runs so that every child comes before its parents (lineage is a DAG)."""
    ids = {r.id for r in runs}
    parents_of = {r.id: {p.id for p in store.parents(r.id).values()} & ids for r in runs}
    ordered: list[Run] = []
    placed: set[int] = set()
    by_id = {r.id: r for r in runs}
    while len(ordered) < len(runs):
        # a run may go once no unplaced run has it as a parent
        ready = [rid for rid in ids - placed if not any(rid in parents_of[o] for o in ids - placed - {rid})]
        assert ready, "lineage has a cycle"
        for rid in sorted(ready):
            ordered.append(by_id[rid])
            placed.add(rid)
    return ordered
