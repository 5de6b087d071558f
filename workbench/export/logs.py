"""Handing runs' logs to other tools: TensorBoard event files (every metric as a scalar, the
snapshot images, the config and environment as text; through `torch.utils.tensorboard`), and
one long table of every metric of the runs (CSV, or Parquet through pyarrow). The `logs` extra
installs tensorboard and pyarrow."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.store import Store

COLUMNS = ("run", "name", "method", "step", "epoch", "key", "value", "wall_time")


def _needs(module: str, what: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise WorkbenchError(f"{what} needs {module}: pip install 'vit-workbench[logs]'") from None


def run_folder(store: Store, run_id: int) -> str:
    """`000012-mae-ratio-0.75`: a run's folder name in TensorBoard's run list (id first, so it sorts)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", store.get_run(run_id).name).strip("-")[:60]
    return f"{run_id:06d}-{slug}" if slug else f"{run_id:06d}"


def written_before(folder: Path, run_id: int) -> list[Path]:
    """A run's event-file folders already under `folder`, under any name it had (a run renamed since)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.split("-", 1)[0] == f"{run_id:06d}")


def already_there(store: Store, run_ids: Sequence[int], target: Path, tensorboard: bool) -> list[Path]:
    """What writing these runs' logs to `target` would replace: the table's file, or the runs'
    event-file folders (a second event file, or a renamed run's second folder, would show every
    curve twice in TensorBoard)."""
    if not tensorboard:
        return [target] if target.exists() else []
    return [path for run_id in run_ids for path in written_before(target, run_id) if any(path.iterdir())]


def to_tensorboard(store: Store, run_ids: Sequence[int], folder: Path,
                   log: Callable[[str], None] = print) -> dict[int, Path]:
    """One event-file folder per run under `folder` (`tensorboard --logdir folder` shows them side
    by side), replacing a run's folders written before; the folder of each run."""
    _needs("tensorboard", "--tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    written = {}
    for run_id in run_ids:
        run = store.get_run(run_id)
        path = folder / run_folder(store, run_id)
        for old in written_before(folder, run_id):
            shutil.rmtree(old)
        writer = SummaryWriter(log_dir=str(path))
        try:
            rows = store.metrics(run_id)
            for _, step, _, key, value, wall in rows:
                writer.add_scalar(key, value, step, walltime=wall)
            images = store.artifacts(run_id, "image")
            for art in images:
                file = store.abspath(art)
                if file.exists():
                    pixels = np.asarray(Image.open(file).convert("RGB"))
                    writer.add_image(f"snapshots/{art.name}", pixels, art.step, dataformats="HWC")
            writer.add_text("config", f"```\n{json.dumps(run.config, indent=1)}\n```")
            if run.environment:
                writer.add_text("environment", "\n".join(f"- {k}: {v}" for k, v in run.environment.items()))
        finally:
            writer.close()
        written[run_id] = path
        log(f"run {run_id}: {len(rows)} metric points, {len(images)} images -> {path}")
    return written


def metric_rows(store: Store, run_ids: Sequence[int]) -> Iterator[tuple]:
    """Every metric point of the runs, one row each (`COLUMNS`), run by run in the order logged."""
    for run_id in run_ids:
        run = store.get_run(run_id)
        for _, step, epoch, key, value, wall in store.metrics(run_id):
            yield run_id, run.name, run.method, step, epoch, key, value, wall


def to_csv(store: Store, run_ids: Sequence[int], path: Path) -> int:
    """All metric points of the runs in one long CSV table; how many rows."""
    count = 0
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for row in metric_rows(store, run_ids):
            out.writerow(row[:-1] + (f"{row[-1]:.3f}",))
            count += 1
    return count


def to_parquet(store: Store, run_ids: Sequence[int], path: Path) -> int:
    """The same table as a Parquet file (typed columns); how many rows."""
    _needs("pyarrow", "--parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(zip(*metric_rows(store, run_ids))) or [()] * len(COLUMNS)
    types = (pa.int64(), pa.string(), pa.string(), pa.int64(), pa.float64(), pa.string(), pa.float64(), pa.float64())
    table = pa.table({name: pa.array(values, type=kind) for name, values, kind in zip(COLUMNS, columns, types)})
    pq.write_table(table, path)
    return table.num_rows
