"""Runs in groups, as trackers show repeats: the selected runs grouped by config fields (or all
but the seed, or by tag), and a group's curve as the mean of its members with a band (sample sd,
or min to max) over the steps every member logged (numpy only, no Qt)."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from workbench.store import Run

NONE = "no groups"
BUT_SEED = "all but seed"  # the runs a sweep repeated over seeds: every config field but the seed alike
TAGS = "tags"
IGNORED = {"seed", "init"}  # never what sets runs apart for grouping (init names a file per run)


def differing(runs: Sequence[Run]) -> list[str]:
    """The config fields (and `method`) whose value differs between these runs, the seed aside."""
    keys = sorted({k for r in runs for k in r.config} - IGNORED)
    fields = [k for k in keys if len({json.dumps(r.config.get(k), sort_keys=True) for r in runs}) > 1]
    return (["method"] if len({r.method for r in runs}) > 1 else []) + fields


def options(runs: Sequence[Run]) -> list[str]:
    """What the selected runs can be grouped by: no groups, all but the seed, tags, then each field
    whose value differs between them."""
    return [NONE, BUT_SEED, TAGS, *differing(runs)]


def group_runs(runs: Sequence[Run], by: Sequence[str]) -> dict[str, list[int]]:
    """Label -> ids of its runs, in the order the runs come; `by`: config fields, or `BUT_SEED`,
    `TAGS` or `method`. Labels name what sets a group apart ("lr=0.001, depth=2")."""
    if not by or NONE in by:
        return {}

    def key(run: Run) -> tuple:
        if BUT_SEED in by:
            return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in run.config.items()
                                if k not in IGNORED)) + (("method", run.method),)
        return tuple((f, run.tags if f == TAGS else run.method if f == "method" else
                      json.dumps(run.config.get(f), sort_keys=True)) for f in by)

    members: dict[tuple, list[Run]] = {}
    for run in runs:
        members.setdefault(key(run), []).append(run)
    shown = differing([group[0] for group in members.values()]) if BUT_SEED in by else list(by)
    labels = {}
    for k, group in members.items():
        lead = group[0]
        parts = [f"{f}={lead.tags or '(none)'}" if f == TAGS else f"{f}={lead.method}" if f == "method" else
                 f"{f}={lead.config.get(f)}" for f in shown]
        labels[", ".join(parts) or "all runs"] = [r.id for r in group]
    return labels


def band(tables: Sequence[np.ndarray], kind: str = "sd") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) of members' [n, 4] (step, epoch, wall, value) tables, over the steps
    all of them logged: low/high are mean -/+ the sample sd (`sd`; 0 for one member) or the
    members' min and max (`minmax`)."""
    if not tables or any(not len(t) for t in tables):
        empty = np.empty(0)
        return empty, empty, empty, empty
    steps = tables[0][:, 0]
    for t in tables[1:]:
        steps = np.intersect1d(steps, t[:, 0])
    values = np.stack([t[np.searchsorted(t[:, 0], steps), 3] if _sorted(t) else _at(t, steps) for t in tables])
    mean = values.mean(axis=0)
    if kind == "minmax":
        return steps, mean, values.min(axis=0), values.max(axis=0)
    sd = values.std(axis=0, ddof=1) if len(tables) > 1 else np.zeros_like(mean)
    return steps, mean, mean - sd, mean + sd


def _sorted(table: np.ndarray) -> bool:
    """Steps strictly increasing: a run logged once per step (a resumed run may repeat steps)."""
    return bool(np.all(np.diff(table[:, 0]) > 0))


def _at(table: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The last value logged at each of `steps` (a resumed run's later rows replace earlier ones)."""
    last = {step: value for step, value in zip(table[:, 0], table[:, 3])}
    return np.array([last[s] for s in steps])
