"""What a study looks like now: its members' progress, its status, and its results table (one
row per sweep point, plus one per run of a reference stage such as a teacher), as CSV or Markdown.

Every number in the table is the final value a member run stored in its summary, so the CLI,
the GUI and an exported file always agree with the runs themselves.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from workbench.store import RunStatus
from workbench.studies.scheduler import STALLED, WAITING

if TYPE_CHECKING:
    from workbench.store import Run, Store, Study, StudyMember, StudyStage


@dataclass
class Overview:
    """A study with its stages, members and their runs, read in four queries."""

    study: Study
    stages: list[StudyStage]
    members: list[StudyMember]
    runs: dict[int, Run]

    def run_of(self, member: StudyMember) -> Run | None:
        return self.runs.get(member.run_id) if member.run_id else None

    def member_state(self, member: StudyMember) -> str:
        """finished, running, queued, waiting (for its parents), stopped (its run failed, was
        cancelled or interrupted) or not started (blocked, or its run was deleted)."""
        run = self.run_of(member)
        if run is None:
            return "waiting" if member.state == WAITING else "not started"
        if run.status in (RunStatus.FINISHED, RunStatus.RUNNING, RunStatus.QUEUED):
            return str(run.status)
        return "stopped"

    def counts(self) -> dict[str, int]:
        """How many members are in each `member_state`."""
        out = dict.fromkeys(("finished", "running", "queued", "waiting", "stopped", "not started"), 0)
        for member in self.members:
            out[self.member_state(member)] += 1
        return out

    @property
    def status(self) -> str:
        """finished, running, stopped (something failed or waits for a resume) or cancelled."""
        if self.study.status == "cancelled":
            return "cancelled"
        counts = self.counts()
        if counts["finished"] == len(self.members):
            return "finished"
        moving = any(m.state == WAITING and not m.note.startswith(STALLED) for m in self.members)
        return "running" if counts["running"] or counts["queued"] or moving else "stopped"

    def progress(self) -> float:
        """Share of the study's training steps done (a member without a run counts as 0 of 1)."""
        parts = [(r.progress if r.status != RunStatus.FINISHED else 1.0) if (r := self.run_of(m)) else 0.0
                 for m in self.members]
        return sum(parts) / len(parts) if parts else 0.0


def overview(store: Store, study_id: int) -> Overview:
    members = store.study_members(study_id)
    return Overview(store.get_study(study_id), store.study_stages(study_id), members,
                    store.runs_by_id([m.run_id for m in members if m.run_id]))


@dataclass
class Table:
    """The results: `header` is the swept fields, then each result column, then `status`."""

    header: list[str]
    rows: list[list[Any]]
    sweep_fields: list[str]
    columns: list[str]  # the result columns' labels
    keys: list[str]  # and the metric each reads
    reference: list[str]  # per row: the reference stage it shows (a teacher), "" for a sweep point


def results(view: Overview) -> Table:
    """One row per sweep point, then one per run of each reference stage (one per seed, its seed
    in the `seed` column, so its rows pool over seeds like a point's)."""
    spec = view.study.spec
    fields, columns = spec["sweep_fields"] or ["row"], spec["columns"]  # a pipeline alone has one row
    stage_ids = {s.name: s.id for s in view.stages}
    # a shared member's place is its seed (None before shared stages ran per seed, or without seeds)
    by_place = {(m.stage_id, m.point, None if m.point is not None else m.values.get("seed")): m for m in view.members}
    references = {s.id for s in view.stages if s.reference}  # rows of their own (a teacher)
    names = {s.id: s.name for s in view.stages}

    def member(stage: str, point: int) -> StudyMember | None:
        sid, seed = stage_ids[stage], spec["points"][point].get("seed")
        return by_place.get((sid, point, None)) or by_place.get((sid, None, seed)) or by_place.get((sid, None, None))

    def value(m: StudyMember | None, key: str) -> Any:
        run = view.run_of(m) if m else None
        return run.summary.get(key, "") if run else ""

    rows, reference = [], []
    for point, values in enumerate(spec["points"]):
        mine = [m for m in view.members if m.stage_id not in references and (
            m.point == point or (m.point is None and m.values.get("seed") in (None, values.get("seed"))))]
        rows.append([values.get(f, "result" if f == "row" else "") for f in fields]
                    + [value(member(c["stage"], point), c["key"]) for c in columns] + [_row_status(view, mine, names)])
        reference.append("")
    for stage in (s for s in view.stages if s.reference):
        for m in (m for m in view.members if m.stage_id == stage.id):
            labels = [f"{stage.name} ({stage.method})"] + [m.values.get("seed", "") if f == "seed" else ""
                                                           for f in fields[1:]]
            rows.append(labels + [value(m, c["key"]) if c["stage"] == stage.reference else "" for c in columns]
                        + [_row_status(view, [m], names)])
            reference.append(stage.name)
    return Table([*fields, *(c["label"] for c in columns), "status"], rows, list(fields),
                 [c["label"] for c in columns], [c["key"] for c in columns], reference)


def _numbers(values: Iterable[Any]) -> list[float]:
    """The values that are numbers (a cell of a run not finished, or without the metric, is '')."""
    return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def point_values(table: Table, col: int) -> dict[tuple, list[float]]:
    """The values of result column `col` per sweep point, repeats (the `seed` field) pooled:
    key = the point's other sweep values, in table order. Reference rows are left out."""
    first = len(table.sweep_fields)
    return {key: _numbers(row[first + col] for row in rows) for key, (ref, rows) in _by_point(table).items()
            if not ref}


def reference_values(table: Table, col: int) -> dict[str, list[float]]:
    """The values of result column `col` per reference stage (its rows' label), seeds pooled."""
    first, out = len(table.sweep_fields), {}
    for row, ref in zip(table.rows, table.reference):
        if ref:
            out.setdefault(row[0], []).extend(_numbers([row[first + col]]))
    return out


def _by_point(table: Table) -> dict[tuple, tuple[str, list[list[Any]]]]:
    """The rows grouped over seeds: key = the row's sweep values but its seed, in table order ->
    (the reference stage the rows show, '' for a sweep point; the rows)."""
    keep = [i for i, f in enumerate(table.sweep_fields) if f != "seed"]
    out: dict[tuple, tuple[str, list[list[Any]]]] = {}
    for row, ref in zip(table.rows, table.reference):
        out.setdefault(tuple(row[i] for i in keep), (ref, []))[1].append(row)
    return out


def seed_means(table: Table) -> Table | None:
    """With a `seed` sweep field: one row per point of the other fields, and one per reference
    stage, each result column as 'mean ± sd' over the seeds with a value (the number of repeats
    last); None without seeds."""
    if "seed" not in table.sweep_fields:
        return None
    first, groups = len(table.sweep_fields), _by_point(table)
    rows = [[*key, *(mean_sd(_numbers(r[first + col] for r in repeats)) for col in range(len(table.columns))),
             f"n={len(repeats)}"] for key, (_, repeats) in groups.items()]
    return Table([*(f for f in table.sweep_fields if f != "seed"), *table.columns, "seeds"], rows,
                 [f for f in table.sweep_fields if f != "seed"], table.columns, table.keys,
                 [ref for ref, _ in groups.values()])


def mean_sd(values: list[float]) -> str:
    """'0.3520 ± 0.0190' (sample sd), one value as is, none as ''."""
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {sd:.4f}"


def _row_status(view: Overview, members: list[StudyMember], stage_names: dict[int, str]) -> str:
    """'finished', or what the first unfinished member of the row is doing."""
    for m in members:
        run, stage = view.run_of(m), stage_names[m.stage_id]
        if run is None:
            return f"{stage}: " + ("its run was deleted" if m.state == "created" else m.note or "waiting")
        if run.status != RunStatus.FINISHED:
            return f"{stage}: run {run.id} {run.status}"
    return "finished"


def to_csv(table: Table) -> str:
    """Full-precision CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([[repr(v) if isinstance(v, float) else v for v in row] for row in table.rows])
    return out.getvalue()


def to_markdown(table: Table) -> str:
    """A Markdown table, numbers to four decimals (as README files and papers want them)."""
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    first, last = len(table.sweep_fields), len(table.header) - 1  # the metric columns: four decimals

    def cell(i: int, v: Any) -> str:
        return (f"{v:.4f}" if first <= i < last and isinstance(v, float) else str(v)).replace("|", "\\|")  # a | (|effect|) escaped

    lines += ["| " + " | ".join(cell(i, v) for i, v in enumerate(row)) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"
