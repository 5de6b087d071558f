"""Formatting shared by the CLI and the GUI, so both show runs the same way."""

from __future__ import annotations

import time

from workbench.config import config_class
from workbench.store import Run


def clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def duration(run: Run) -> str:
    if not run.started_at:
        return "-"
    seconds = int((run.finished_at or time.time()) - run.started_at)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def key_metric(run: Run) -> str:
    """'val/top1=0.8312' for the method's key metric, or '' before the first evaluation."""
    key = config_class(run.method).key_metric
    return f"{key}={run.summary[key]:.4f}" if key in run.summary else ""
