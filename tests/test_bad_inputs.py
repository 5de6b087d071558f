"""The catalogue of bad input: each row sets one up, runs the real command line (in this process),
and expects a sentence, an exit code, and never a traceback. A new case is a new row.

Rows come in the categories of the 75 tries that found these defects: config values, image
folders, CIFAR pickles, studies, the data folder and database, and the commands' own arguments.
Cases that need a trained run or a worker live beside the code they test (tests/jobs, tests/data).
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.data.test_user_datasets import write_fake_cifar10
from workbench.cli import main
from workbench.jobs import create_run
from workbench.store import RunStatus, Store

FIXTURES = Path(__file__).parent / "store" / "fixtures"


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # writes the bad input under the folder; returns the argv
    says: str  # a fragment of what the user is told (stdout and stderr together)
    code: int = 2  # 2: refused; 0: done, with the problem reported
    env: dict[str, str] = field(default_factory=dict)


def train(*sets: str) -> Callable[[Path], list[str]]:
    return lambda _tmp: ["train", "--method", "vit", "--preset", "tiny", "--set", *sets]


def folder(tmp: Path, extra: Callable[[Path], None] = lambda _root: None) -> Path:
    """A labelled folder of two classes, six small PNGs each, plus whatever `extra` adds."""
    root = tmp / "images"
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((24, 24, 3), 40 + 100 * c + i, np.uint8)).save(root / name / f"{i}.png")
    extra(root)
    return root


def add(extra: Callable[[Path], None], *flags: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["datasets", "add", "mine", str(folder(tmp, extra)), *flags]


def bomb(root: Path) -> None:
    """A real, valid 20000 x 20000 one-bit PNG (400 megapixels; 50 MB of zeros compressed to 50 kB)."""
    side = 20_000
    row = b"\0" * (1 + side // 8)
    z = zlib.compressobj()
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    (root / "cat" / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
                                            + chunk(b"IEND", b""))


def truncated_jpeg(root: Path) -> None:
    path = root / "dog" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-600])  # the header is whole; the scan data stops early


def cifar(change: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """A fake CIFAR-10 folder with one file rewritten by `change`, added as a dataset."""
    def setup(tmp: Path) -> list[str]:
        write_fake_cifar10(tmp / "c")
        change(tmp / "c" / "cifar-10-batches-py")
        return ["datasets", "add", "c10", str(tmp / "c"), "--kind", "cifar10"]
    return setup


def rewrite(name: str, edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        with open(folder / name, "wb") as fh:
            pickle.dump(edit(batch), fh, protocol=2)
    return change


def database(content: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """The home's database file written by `content` (garbage, an old build's file edited)."""
    def setup(tmp: Path) -> list[str]:
        (tmp / "home").mkdir(exist_ok=True)
        content(tmp / "home" / "workbench.sqlite")
        return ["runs"]
    return setup


def legacy_version(value: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        shutil.copy(FIXTURES / "v1.sqlite", path)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
    return write


def finished_run_with_metrics(tmp: Path) -> list[str]:
    store = Store()
    run = create_run(store, "vit", preset="tiny")
    store.add_metrics(run.id, [(1, 0.1, "train/loss", 2.3, 0.0), (1, 0.1, "val/top1", 0.1, 0.0)])
    store.transition(run.id, RunStatus.FINISHED, only_from=[RunStatus.QUEUED])
    store.close()
    return ["metrics", str(run.id), "--key", "val/top5"]


def interrupted_without_checkpoint(_tmp: Path) -> list[str]:
    store = Store()
    run = create_run(store, "vit", preset="tiny")
    store.update_run(run.id, status=RunStatus.INTERRUPTED, step=40, total_steps=280)
    store.close()
    return ["resume", str(run.id)]


def failed_at_step_0(tmp: Path) -> list[str]:
    """A run that failed before it saved anything, named as the weights to start from."""
    store = Store()
    run = create_run(store, "vit", preset="tiny")
    store.update_run(run.id, status=RunStatus.FAILED)
    store.close()
    return ["train", "--method", "vit", "--preset", "tiny", "--set", f"init=run:{run.id}"]


def text_as_weights(tmp: Path) -> list[str]:
    (tmp / "notes.pth").write_text("hello")
    return train(f"init={tmp / 'notes.pth'}")(tmp)


def swin_weights(tmp: Path) -> list[str]:
    """A Swin's tensors (its blocks are under layers.N), named as a ViT run's weights to start from."""
    from safetensors.numpy import save_file

    save_file({"patch_embed.proj.weight": np.zeros((8, 3, 4, 4), np.float32),
               "layers.0.blocks.0.mlp.fc1.weight": np.zeros((16, 8), np.float32)}, str(tmp / "swin.safetensors"))
    return train(f"init={tmp / 'swin.safetensors'}")(tmp)


def in_use(tmp: Path) -> list[str]:
    """A dataset a queued run trains on, asked to be forgotten (the run would fail)."""
    assert main(["datasets", "add", "mine", str(folder(tmp))]) == 0
    create_run(Store(), "vit", preset="tiny", overrides=["dataset=mine", "batch_size=4"])
    return ["datasets", "remove", "mine"]


def small_dataset(tmp: Path) -> list[str]:
    assert main(["datasets", "add", "mine", str(folder(tmp))]) == 0  # twelve images
    return ["train", "--method", "vit", "--preset", "tiny", "--set", "dataset=mine", "batch_size=11"]


CASES = [
    # config values
    Case("nan-lr", train("lr=nan"), "lr: nan is not a finite number"),
    Case("inf-warmup", train("warmup_epochs=inf"), "warmup_epochs: inf is not a finite number"),
    Case("cuda-absent", train("device=cuda:63"), "device: cuda:63 is not on this machine"),
    Case("init-no-file", train("init=/nowhere/weights.safetensors"), "init: no file at /nowhere/weights.safetensors"),
    Case("init-no-run", train("init=run:999"), "init: there is no run 999"),
    Case("init-text-file", text_as_weights, "notes.pth is neither a .safetensors file nor a file torch.save wrote"),
    Case("init-not-a-vit", swin_weights, "not a plain ViT's weights: no blocks.0.mlp.fc1.weight"),
    Case("init-run-never-saved", failed_at_step_0, "has no checkpoint file: it never saved one"),
    Case("batch-over-the-training-set", small_dataset,
         "batch_size: 11 is larger than the training set of dataset 'mine' (10 images, 2 of its 12 held out"),
    Case("set-twice", train("lr=1e-3", "lr=1e-4"), "lr: given twice (1e-3 and 1e-4); give it once"),
    Case("parent-twice", lambda _t: ["train", "--method", "deit", "--parent", "teacher=1", "--parent", "teacher=2"],
         "--parent teacher is given twice (runs 1 and 2)"),
    # image folders
    Case("folder-is-a-file", lambda t: ["datasets", "add", "x", str(folder(t) / "cat" / "0.png")],
         "0.png is a file; give the folder that holds the images"),
    Case("bomb-skipped", add(bomb), "huge.png: too large (400 megapixels", code=0),
    Case("one-class-left", add(lambda r: [p.write_bytes(b"not an image") for p in (r / "dog").iterdir()]),
         "has 1 class folder with images (dog has none it can read)"),
    Case("truncated-jpeg-skipped", add(truncated_jpeg), "cut.jpg: unreadable image (OSError: image file is truncated",
         code=0),
    Case("val-folder-lacks-a-class", lambda t: ["datasets", "add", "mine", str(folder(t)), "--val",
                                                str(folder(t / "v", lambda r: [p.unlink() for p in (r / "dog").iterdir()]))],
         "warning: the validation folder has no images of 1 of 2 classes (dog)", code=0),
    Case("pixel-limit-not-a-number", lambda t: ["datasets", "add", "mine", str(folder(t))],
         "WORKBENCH_MAX_IMAGE_PIXELS='lots' is not a whole number", env={"WORKBENCH_MAX_IMAGE_PIXELS": "lots"}),
    # CIFAR pickles
    Case("cifar-no-data", cifar(rewrite("data_batch_1", lambda b: {b"labels": b[b"labels"]})),
         "data_batch_1 is not a CIFAR batch: it needs b'data' and b'labels' entries (found b'labels')"),
    Case("cifar-a-list", cifar(rewrite("data_batch_2", lambda b: [1, 2, 3])),
         "data_batch_2 is not a CIFAR batch: it needs b'data' and b'labels' entries (found a list)"),
    Case("cifar-wrong-shape", cifar(rewrite("data_batch_3", lambda b: {**b, b"data": b[b"data"][:, :100]})),
         "b'data' should be uint8 rows of 3072 values (32 x 32 x 3), not uint8 of shape (20, 100)"),
    Case("cifar-labels-short", cifar(rewrite("test_batch", lambda b: {**b, b"labels": b[b"labels"][:3]})),
         "test_batch has 20 images but 3 labels"),
    Case("cifar-label-out-of-range", cifar(rewrite("data_batch_4", lambda b: {**b, b"labels": [55] * 20})),
         "data_batch_4: label 55 is outside 0-9 (the meta file lists 10 classes"),
    Case("cifar-meta-without-names", cifar(rewrite("batches.meta", lambda b: {b"num_vis": 3072})),
         "batches.meta is not a cifar10 meta file: it has no list of class names under b'label_names'"),
    # the data folder and its database
    Case("db-not-sqlite", database(lambda p: p.write_bytes(b"not a database" * 100)),
         "workbench.sqlite is not a SQLite database; the file was left as it is"),
    Case("db-version-abc", database(legacy_version("abc")), "records schema version 'abc'"),
    Case("db-typo", lambda t: ["--db", str(t / "typo.sqlite"), "runs"], "there is no store at "),
    Case("home-is-a-file", lambda t: (t / "home").write_text("notes") and ["runs"],
         "which is a file, not a folder"),
    # the commands' own arguments
    Case("runs-bogus-status", lambda _t: ["runs", "--status", "bogus"], "invalid choice: 'bogus'"),
    Case("forget-built-in", lambda _t: ["datasets", "remove", "shapes"], "shapes is built in and cannot be forgotten"),
    Case("forget-in-use", in_use, "run(s) 1 wait or train on dataset 'mine'; cancel them, or forget it once they end"),
    Case("runs-none-yet", lambda _t: ["runs"], "no runs yet", code=0),
    Case("restore-unknown", lambda _t: ["restore", "999"], "there is no run 999"),
    Case("tag-nothing", lambda _t: ["tag", "1"], "say what changes: `workbench tag 1 +TAG -TAG`"),
    Case("gui-no-display", lambda _t: ["gui"], "no display to open the window on",
         env={"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}),
    Case("metrics-unknown-key", finished_run_with_metrics,
         "has no metric 'val/top5'; the metrics it recorded: train/loss, val/top1"),
    Case("resume-without-checkpoint", interrupted_without_checkpoint, "--from-scratch` starts it again from step 0"),
    # studies
    Case("study-set-out-of-range", lambda _t: ["study", "mae-mask-strategy", "--set", "mask_ratio=1.2"],
         "mask_ratio: 1.2 is outside the allowed range"),
    Case("study-set-twice", lambda _t: ["study", "mae-mask-strategy", "--set", "epochs=2", "epochs=3"],
         "epochs: given twice (2 and 3)"),
    Case("study-sweep-without-values", lambda _t: ["study", "sweep", "--method", "vit", "--vary", "lr="],
         "lr: give the values to try: lr=A,B,C (a list) or lr=START:STOP:COUNT (a range)"),
    Case("study-set-swept", lambda _t: ["study", "mae-mask-ratio", "--set", "mask_ratio=0.5"],
         "mask_ratio: the study sweeps mask_ratio"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_sentence_not_a_traceback(case: Case, home: Path, tmp_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    try:
        code = main(case.setup(tmp_path))
    except SystemExit as exc:  # argparse's own refusals (an unknown choice) exit 2 after their usage line
        code = exc.code
    out = capsys.readouterr()
    told = out.out + out.err
    assert case.says in told, told
    assert code == case.code, told
    assert "Traceback" not in told and "Warning" not in told


def test_a_store_named_by_db_that_is_not_there_is_not_made(home: Path, tmp_path: Path, capsys,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", "")  # what `--db` sets is undone after the test
    where = tmp_path / "elsewhere"
    where.mkdir()
    assert main(["--db", str(where / "typo.sqlite"), "train", "--method", "vit", "--preset", "tiny"]) == 2
    assert f"there is no store at {where / 'typo.sqlite'}" in capsys.readouterr().err
    assert list(where.iterdir()) == []
    Store(where / "mine.sqlite").close()  # one that is there opens
    assert main(["--db", str(where / "mine.sqlite"), "runs"]) == 0


def test_a_copy_refused_leaves_no_new_store_file(home: Path, tmp_path: Path, capsys) -> None:
    store = Store()
    run = create_run(store, "vit", preset="tiny")
    store.update_run(run.id, status=RunStatus.RUNNING)  # its worker would go on writing to the source only
    target = tmp_path / "copy.sqlite"
    assert main(["db", "migrate-to", str(target)]) == 2
    said = capsys.readouterr().err
    assert f"run {run.id} of" in said and "is running; wait for them to end or cancel them" in said
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == []
