"""Formatting shared by the CLI and the GUI, so both show runs the same way."""

from __future__ import annotations

import json
import shlex
import time
from typing import TYPE_CHECKING, Any, Mapping

from workbench.methods import config_class

if TYPE_CHECKING:
    from workbench.store import Run, Store


def clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def status(run: Run) -> str:
    """The run's status as lists show it: a running run asked to cancel (its worker, perhaps on
    another host, stops after its current step) is "cancelling"."""
    return "cancelling" if run.status == "running" and run.cancel_requested_at else run.status


def job(run: Run) -> str:
    """'Slurm job 1234 · PENDING (Priority)' for a run sent to a cluster (what the cluster last said,
    while the run waits or trains); '' for a run trained here."""
    if not run.job_id:
        return ""
    said = f" · {run.job_state}" if run.job_state and run.status in ("queued", "running") else ""
    return f"Slurm job {run.job_id.removeprefix('slurm:')}{said}"


def environment(run: Run) -> str:
    """'workbench 0.1.0 · python 3.11.7 · torch 2.14.1 · ...': what its worker last started on."""
    return " · ".join(f"{k} {v}" for k, v in run.environment.items())


def duration(run: Run) -> str:
    """Its training time over every segment (a resumed run's gaps left out); '-' before it started."""
    return seconds(run.training_seconds) if run.started_at else "-"


def seconds(value: float) -> str:
    """'1:02:03'."""
    whole = int(value)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def segments(run: Run) -> str:
    """'2 segments: 12:01–12:03, 12:10–12:12' for a run resumed after a stop ('now' while it trains;
    the date where it is not the first start's); '' for a run trained in one go."""
    spans = run.segments
    if len(spans) < 2:
        return ""
    first_day = time.strftime("%Y-%m-%d", time.localtime(spans[0][0]))

    def at(t: float | None) -> str:
        if t is None:
            return "now"
        day = time.strftime("%Y-%m-%d", time.localtime(t))
        return time.strftime("%H:%M" if day == first_day else "%Y-%m-%d %H:%M", time.localtime(t))
    return f"{len(spans)} segments: " + ", ".join(f"{at(start)}–{at(end)}" for start, end in spans)


def number(value: float) -> str:
    """Counts (parameters, whole numbers) as '95,478', everything else (accuracies, losses) to
    four decimals."""
    if isinstance(value, int) and not isinstance(value, bool) or float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.4f}"


def setting(value: float) -> str:
    """A config value as it was given: '64', '50,000', '0.00316', '1e-05' (not '0.0032')."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def key_value(run: Run) -> float | None:
    """The newest value of the method's key metric, or None before the first evaluation."""
    return run.summary.get(config_class(run.method).key_metric)


def key_metric(run: Run) -> str:
    """'val/top1=0.8312' for the method's key metric, or '' before the first evaluation."""
    value = key_value(run)
    return "" if value is None else f"{config_class(run.method).key_metric}={number(value)}"


def higher_is_better(key: str) -> bool:
    """Losses and reconstruction errors go down; accuracies and agreement go up."""
    return not any(word in key for word in ("loss", "recon", "mse", "kl"))


def cli_command(method: str, config: Mapping[str, Any], parents: Mapping[str, int] | None = None,
                name: str = "") -> str:
    """The `workbench train` line that recreates this config (fields at their default left out)."""
    defaults = {spec.name: spec.default for spec in config_class(method).field_specs()}
    sets = [f"{k}={v}" for k, v in config.items() if k in defaults and v != defaults[k]]
    parts = ["workbench", "train", "--method", method]
    if sets:
        parts += ["--set", *sets]
    for role, run_id in (parents or {}).items():
        parts += ["--parent", f"{role}={run_id}"]
    if name:
        parts += ["--name", name]
    return " ".join(shlex.quote(p) for p in parts)


def run_report(store: Store, run_id: int) -> dict[str, Any] | None:
    """The newest end-of-training report a run stored (a classifier's diagnostics, a DeiT's comparison),
    or None (none written, or unreadable)."""
    art = store.latest_artifact(run_id, "report")
    if art is None:
        return None
    try:
        return json.loads(store.abspath(art).read_text())
    except (OSError, ValueError):
        return None


def diagnostics_lines(diagnostics: Mapping[str, Any]) -> list[str]:
    """A classifier's diagnostics as text: top-1 (top-5), then precision, recall and support per class."""
    head = f"top-1 {diagnostics['top1']:.4f}" + (f", top-5 {diagnostics['top5']:.4f}" if "top5" in diagnostics else "")
    lines = [f"diagnostics on {diagnostics['n']} validation images: {head}",
             f"  {'class':<16} {'precision':>9} {'recall':>7} {'support':>8}"]
    for row in diagnostics["per_class"]:
        cells = [f"{row[k]:.3f}" if row[k] is not None else "-" for k in ("precision", "recall")]
        lines.append(f"  {row['class'][:16]:<16} {cells[0]:>9} {cells[1]:>7} {row['support']:>8}")
    return lines


def no_gallery(diagnostics: Mapping[str, Any]) -> str:
    """What stands in for the gallery of mistakes when a report has none: decided from the
    confusion counts, as a report may keep no pictures of mistakes it made (DeiT's draws both
    heads' predictions on the Distillation tab instead)."""
    counts = diagnostics["confusion"]
    wrong = sum(map(sum, counts)) - sum(row[i] for i, row in enumerate(counts))
    if wrong == 0:
        return f"no mistakes: every one of the {diagnostics['n']:,} validation images was classified right"
    return (f"{wrong:,} of the {diagnostics['n']:,} validation images were classified wrong; this run's report "
            f"keeps no pictures of them")


def confusion_lines(diagnostics: Mapping[str, Any], most: int = 30) -> list[str]:
    """The confusion matrix as text (rows: the true class, columns: the predicted one, numbered as
    the rows); beyond `most` classes, a line saying where it is."""
    classes, counts = diagnostics["classes"], diagnostics["confusion"]
    if len(classes) > most:
        return [f"confusion matrix: {len(classes)} classes, too many to print (--json has it)"]
    width = max(3, len(str(max(max(row) for row in counts))) + 1)
    name = max(len(c[:16]) for c in classes) + len(str(len(classes))) + 1
    lines = ["confusion (rows: true class, columns: predicted)",
             " " * (name + 2) + "".join(f"{i:>{width}}" for i in range(len(classes)))]
    for i, (label, row) in enumerate(zip(classes, counts)):
        lines.append(f"  {f'{i} {label[:16]}':<{name}}" + "".join(f"{n:>{width}}" for n in row))
    return lines
