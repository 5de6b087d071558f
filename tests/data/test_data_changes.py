"""Data that was silently wrong: 16-bit pictures, stale caches, folders that changed after they
were added, folders that cannot be read. Real files, written here."""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.test_user_datasets import write_fake_cifar10
from workbench.data import folders, registry
from workbench.data.loading import load_data
from workbench.errors import DataError
from workbench.methods import make_config
from workbench.store import Store


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    """A 16-bit PNG of a dim ramp (0-2 % of full scale) stays dim; Pillow's convert made 73 % white."""
    ramp = np.tile(np.linspace(0, 1300, 64), (64, 1)).astype(np.uint16)
    path = tmp_path / "dim16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really 16 bits on disk
    image = folders.load_image(path, 32)
    assert image.dtype == np.uint8 and image.max() <= 6 and (image == 255).mean() == 0
    bright = tmp_path / "bright16.png"
    Image.fromarray((ramp.astype(np.float64) * 50).astype(np.uint16)).save(bright)
    got = folders.load_image(bright, 64)[:, :, 0].astype(float)
    assert abs(got.mean() - (ramp * 50 / 257).mean()) < 2  # the full range maps onto 0-255


def test_32_bit_float_greyscale_in_0_1(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((40, 40), 0.5, np.float32), "F").save(path)
    assert abs(int(folders.load_image(path, 32).mean()) - 128) <= 1


def test_a_144_megapixel_image_reads_without_pillows_warning(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (12_000, 12_000)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail here
        assert folders.check_image(path, decode=False) == ((12_000, 12_000), "")
    monkeypatch.setenv("WORKBENCH_MAX_IMAGE_PIXELS", "100000000")
    size, why = folders.check_image(path, decode=False)
    assert size is None and "too large (144 megapixels, 12000 x 12000; the limit is 100 megapixels" in why


def test_the_cifar_cache_follows_the_files_not_the_folder(store: Store, tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path / "c")
    registry.register(store, "c", "cifar10", tmp_path / "c")
    cfg = make_config("vit", "tiny", {"dataset": "c"})
    before = load_data(cfg, store).train.images[0].copy()
    batch = tmp_path / "c" / "cifar-10-batches-py" / "data_batch_1"
    with open(batch, "rb") as fh:
        content = pickle.load(fh, encoding="bytes")
    content[b"data"] = 255 - content[b"data"]  # the user fixes (here: inverts) the file
    with open(batch, "wb") as fh:
        pickle.dump(content, fh, protocol=2)
    after = load_data(cfg, store).train.images[0]
    assert np.array_equal(after.astype(int), 255 - before.astype(int))


def _classes(root: Path, names: list[str], per_class: int = 5) -> None:
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((20, 20, 3), 30 * c + i, np.uint8)).save(root / name / f"{i}.png")


def test_a_class_gone_since_the_dataset_was_added_stops_the_run(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "clothes"
    _classes(root, ["bag", "boot", "coat"])
    registry.register(store, "clothes", "imagefolder", root)
    cfg = make_config("vit", "tiny", {"dataset": "clothes"})
    for image in (root / "bag").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"had 3 classes when it was added and now has 2 \(no readable images "
                                        r"left: bag\); restore the images, or `workbench datasets remove clothes`"):
        load_data(cfg, store)
    assert store.get_dataset("clothes").stats["classes"] == ["bag", "boot", "coat"]  # left as the user made it


def test_images_gone_since_the_dataset_was_added_are_said_and_recorded(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "clothes"
    _classes(root, ["bag", "boot", "coat"])
    registry.register(store, "clothes", "imagefolder", root)
    (root / "coat" / "0.png").unlink()
    data = load_data(make_config("vit", "tiny", {"dataset": "clothes"}), store)
    assert data.notes[0] == ("dataset 'clothes': its files changed since it was added (15 -> 14 images, 0 -> 0 "
                             "skipped); its record is updated")
    assert data.notes[1].startswith("its 14 images are decoded into the cache as training starts")
    data.train.filling.thread.join()
    assert store.get_dataset("clothes").stats["per_class"] == [5, 5, 4]
    assert load_data(make_config("vit", "tiny", {"dataset": "clothes"}), store).notes == []  # said once


def test_an_unchanged_folder_starts_from_its_cache_without_its_headers_read(store: Store, tmp_path: Path) -> None:
    """A folder whose files have the names, sizes and times of its last check is trusted: its cache
    opens without a header read. A file changed since (its time) is checked again."""
    root = tmp_path / "clothes"
    _classes(root, ["bag", "boot", "coat"])
    registry.register(store, "clothes", "imagefolder", root)
    first = registry.resolve(store, "clothes", 16)  # fills the cache as a run would read it
    first.filling.thread.join()
    cache = first.filling.folder
    assert (cache / "meta.json").exists()
    victim = root / "boot" / "1.png"
    before = victim.stat()
    victim.write_bytes(b"\0" * before.st_size)  # unreadable now, with its old size ...
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and its old time
    trusted = registry.resolve(store, "clothes", 16)
    assert trusted.filling is None and Path(trusted.splits["train"].images.filename) == cache / "train_images.npy"
    assert trusted.meta["problems"] == [] and trusted.meta["changes"] == []
    os.utime(victim)  # a new time: checked again, and skipped
    checked = registry.resolve(store, "clothes", 16)
    checked.filling.thread.join()
    assert checked.filling.folder != cache
    assert [Path(path).name for path, _ in checked.meta["problems"]] == ["1.png"]
    assert len(checked.splits["train"].images) + len(checked.splits["val"].images) == 14


@pytest.mark.parametrize("kind", ["imagefolder", "unlabeled"])
def test_an_unchanged_validation_folder_is_not_read_again_either(store: Store, tmp_path: Path, kind: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A separate validation folder (with a class the training set lacks, skipped) whose files have
    the names, sizes and times of its last check is trusted too: its headers were read at every
    run start. A file changed since is checked again."""
    _classes(tmp_path / "train", ["bag", "boot"])
    _classes(tmp_path / "val", ["bag", "boot", "hat"], per_class=3)
    registry.register(store, "clothes", kind, tmp_path / "train", val_path=tmp_path / "val")
    first = registry.resolve(store, "clothes", 16)
    first.filling.thread.join()
    assert len(first.splits["val"].images) == (6 if kind == "imagefolder" else 9)
    victim = tmp_path / "val" / "boot" / "1.png"
    before = victim.stat()
    victim.write_bytes(b"\0" * before.st_size)  # unreadable now, with its old size and time
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    opened, check = [], folders.check_image
    monkeypatch.setattr(folders, "check_image", lambda path, *a: opened.append(path) or check(path, *a))
    trusted = registry.resolve(store, "clothes", 16)
    assert opened == [] and trusted.filling is None and trusted.meta["changes"] == []
    assert Path(trusted.splits["val"].images.filename).parent == first.filling.folder
    os.utime(victim)  # a new time: checked again, and skipped
    checked = registry.resolve(store, "clothes", 16)
    checked.filling.thread.join()
    assert len(checked.splits["val"].images) == len(first.splits["val"].images) - 1
    assert any(Path(path) == victim for path, _ in checked.meta["problems"])


def test_a_folder_that_cannot_be_read_is_named_with_the_reason(tmp_path: Path, monkeypatch) -> None:
    """Tests run as root, which reads any folder: os.scandir raises what the OS raises for others."""
    root = tmp_path / "pets"
    _classes(root, ["cat", "dog"])
    (root / "dog" / "private").mkdir()
    real = os.scandir

    def scandir(path):
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = folders.scan(root, labelled=True)
    assert (str(root / "dog" / "private"), "folder cannot be read (permission denied); skipped") in scan.problems
    assert len(scan.items) == 10


def test_channel_statistics_are_exact_whatever_the_chunks() -> None:
    """The cache's mean and std (from each channel's histogram) equal numpy's float64 ones, read in
    one chunk or in many."""
    from workbench.data.cache import channel_stats

    rng = np.random.default_rng(3)
    images = np.clip(rng.normal([60, 128, 200], [20, 50, 30], (37, 9, 11, 3)), 0, 255).astype(np.uint8)
    pixels = images.reshape(-1, 3).astype(np.float64) / 255
    expected = ([round(float(v), 5) for v in pixels.mean(0)], [round(float(v), 5) for v in pixels.std(0)])
    assert channel_stats(images) == expected == channel_stats(images, pixels_per_chunk=200)  # 2 images a chunk
