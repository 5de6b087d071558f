"""`workbench export-logs`: a run's metrics and snapshots as TensorBoard event files, read back
with TensorBoard's own EventAccumulator, and as one CSV / Parquet table."""

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from workbench.engine.execute import execute
from workbench.export import logs
from workbench.jobs import create_run
from workbench.store import Store


@pytest.fixture
def two_runs(store: Store) -> list[int]:
    runs = []
    for lr in ("1e-3", "2e-3"):
        run = create_run(store, "vit", preset="tiny", overrides=["max_steps=10", "eval_every=5", "log_every=5",
                                                                f"lr={lr}"], name=f"vit lr={lr}")
        assert execute(store, run.id, log=lambda _: None) == "finished"
        runs.append(run.id)
    return runs


def test_tensorboard_reads_back_every_scalar_and_snapshot(store: Store, two_runs: list[int], tmp_path: Path) -> None:
    out = tmp_path / "tb"
    written = logs.to_tensorboard(store, two_runs, out, log=lambda _: None)  # the CLI's --tensorboard
    assert list(written) == two_runs
    folders = sorted(p.name for p in out.iterdir())
    assert folders == [f"{two_runs[0]:06d}-vit-lr-1e-3", f"{two_runs[1]:06d}-vit-lr-2e-3"]
    for run_id, folder in zip(two_runs, folders):
        events = EventAccumulator(str(out / folder), size_guidance={"scalars": 0, "images": 0}).Reload()
        tags = events.Tags()
        assert set(tags["scalars"]) == set(store.metric_keys(run_id))
        for key in ("train/loss", "val/top1"):
            stored = [(r[1], r[4]) for r in store.metrics(run_id, key=key)]
            read = [(e.step, e.value) for e in events.Scalars(key)]
            assert [s for s, _ in read] == [s for s, _ in stored]
            assert [v for _, v in read] == pytest.approx([v for _, v in stored], rel=1e-6)  # TensorBoard: float32
        snapshots = store.artifacts(run_id, "image")
        assert snapshots and len([t for t in tags["images"]]) == len({a.name for a in snapshots})
        first = events.Images(f"snapshots/{snapshots[0].name}")
        assert [i.step for i in first] == sorted(a.step for a in snapshots if a.name == snapshots[0].name)
        assert first[0].encoded_image_string.startswith(b"\x89PNG")
    assert logs.already_there(store, two_runs, out, tensorboard=True) == [out / f for f in folders]
    logs.to_tensorboard(store, two_runs[:1], out, log=lambda _: None)  # --overwrite: one event file, not two
    assert len(list((out / folders[0]).iterdir())) == 1
    store.update_run(two_runs[0], name="the better lr")  # renamed since: its old folder is its folder too
    assert logs.already_there(store, two_runs[:1], out, tensorboard=True) == [out / folders[0]]
    logs.to_tensorboard(store, two_runs[:1], out, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == [f"{two_runs[0]:06d}-the-better-lr", folders[1]]


def test_one_long_table_as_csv_and_parquet(cli, store: Store, two_runs: list[int], tmp_path: Path) -> None:
    expected = [(run_id, r[1], r[3], r[4]) for run_id in two_runs for r in store.metrics(run_id)]
    done = cli("export-logs", *map(str, two_runs), "--csv", str(tmp_path / "m.csv"))
    assert done.returncode == 0 and f"{len(expected)} metric rows of 2 run(s)" in done.stdout, done.stderr
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["run"]), int(r["step"]), r["key"], float(r["value"])) for r in rows] == expected
    assert {r["name"] for r in rows} == {"vit lr=1e-3", "vit lr=2e-3"} and {r["method"] for r in rows} == {"vit"}
    done = cli("export-logs", *map(str, two_runs), "--parquet", str(tmp_path / "m.parquet"))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "m.parquet").to_pydict()
    assert list(zip(table["run"], table["step"], table["key"], table["value"])) == expected
    again = cli("export-logs", str(two_runs[0]), "--csv", str(tmp_path / "m.csv"))  # an earlier export is kept
    assert again.returncode != 0 and "m.csv already exists; overwrite it (--overwrite)" in again.stderr
    with open(tmp_path / "m.csv") as f:
        assert len(list(csv.DictReader(f))) == len(expected)
    again = cli("export-logs", str(two_runs[0]), "--csv", str(tmp_path / "m.csv"), "--overwrite")
    with open(tmp_path / "m.csv") as f:
        assert again.returncode == 0 and {int(r["run"]) for r in csv.DictReader(f)} == {two_runs[0]}
    missing = cli("export-logs", str(two_runs[0]), "999", "--csv", str(tmp_path / "x.csv"))
    assert missing.returncode != 0 and "999" in missing.stderr and not (tmp_path / "x.csv").exists()
