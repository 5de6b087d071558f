"""The user's own data: image folders written here as real files in several formats, with the
usual mess (corrupt, empty, not-an-image, empty class, nested, unicode), and a fake CIFAR-10
in the real pickle layout."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench import paths
from workbench.data import check_dataset, folders, registry, validation_text
from workbench.data.loading import load_data
from workbench.errors import ConfigError, DataError
from workbench.jobs import create_run
from workbench.methods import make_config
from workbench.store import RunStatus, Store

COLOURS = {"red": (220, 40, 40), "blue": (40, 60, 220), "grün": (40, 200, 70)}


def photo(colour: tuple[int, int, int], size: tuple[int, int], seed: int) -> Image.Image:
    """A noisy picture of one colour, `size` (width, height); `seed` makes each one differ."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def write_folder(root: Path, per_class: int = 12) -> dict[str, list[str]]:
    """A labelled folder in every format Pillow reads, plus the files that must be skipped."""
    bad = []
    formats = [("png", {}), ("jpg", {}), ("webp", {}), ("bmp", {}), ("tiff", {})]
    for c, (name, colour) in enumerate(COLOURS.items()):
        folder = root / name
        (folder / "nested" / "deeper").mkdir(parents=True)
        for i in range(per_class):
            ext, kwargs = formats[i % len(formats)]
            image = photo(colour, (40 + 3 * i, 30 + 2 * i), seed=100 * c + i)
            if i % 4 == 1:
                image = image.convert("L")  # greyscale
            if i % 4 == 2 and ext == "png":
                image = image.convert("RGBA")
            target = folder / ("nested/deeper" if i % 3 == 0 else "") / f"ímage_{i}.{ext}"
            image.save(target, **kwargs)
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "blue" / "empty.png").write_bytes(b"")
    (root / "grün" / "notes.txt").write_text("not an image")
    png = root / "blue" / "truncated.png"
    photo((1, 2, 3), (30, 30), 0).save(png)
    png.write_bytes(png.read_bytes()[:40])
    (root / "empty_class").mkdir()
    (root / "stray.png").write_bytes(b"")
    bad = ["broken.jpg", "empty.png", "notes.txt", "truncated.png", "empty_class", "stray.png"]
    return {"bad": bad}


def test_scan_keeps_the_good_images_and_reports_the_bad_ones(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    expected = write_folder(root)
    scan = folders.scan(root, labelled=True)
    assert scan.classes == ["blue", "grün", "red"]  # the empty class is dropped
    assert len(scan.items) == 36
    assert np.bincount([label for _, label in scan.items]).tolist() == [12, 12, 12]
    reported = {Path(p).name: why for p, why in scan.problems}
    assert set(reported) == set(expected["bad"])
    assert "not an image file (.txt)" in reported["notes.txt"]
    assert reported["empty.png"] == "empty file (0 bytes)"
    assert reported["broken.jpg"].startswith("unreadable image")
    assert reported["truncated.png"].startswith("unreadable image")
    assert "no readable images" in reported["empty_class"]
    assert "not inside a class folder" in reported["stray.png"]
    report = scan.report()
    assert report["images"] == 36 and report["skipped"] == 6 and report["width"][0] == 40
    image = folders.load_image(scan.items[0][0], 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8


def test_nothing_usable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only_bad" / "a").mkdir(parents=True)
    (tmp_path / "only_bad" / "a" / "x.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no readable images in .*only_bad.*empty file"):
        folders.scan(tmp_path / "only_bad", labelled=True)
    (tmp_path / "one_class" / "a").mkdir(parents=True)
    photo((0, 0, 0), (8, 8), 0).save(tmp_path / "one_class" / "a" / "x.png")
    with pytest.raises(DataError, match="needs at least 2"):
        folders.scan(tmp_path / "one_class", labelled=True)
    with pytest.raises(DataError, match="there is no folder"):
        folders.scan(tmp_path / "missing", labelled=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="it is empty"):
        folders.scan(tmp_path / "empty", labelled=False)


def test_registered_folder_trains_from_a_decoded_cache(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_folder(root)
    record = registry.register(store, "photos", "imagefolder", root, val_fraction=0.25)
    assert record.stats["classes"] == ["blue", "grün", "red"] and record.stats["skipped"] == 6
    data = load_data(make_config("vit", "tiny", {"dataset": "photos"}), store)
    assert (len(data.train), len(data.val)) == (27, 9)  # 25 % of each class held out
    assert data.info.classes == ["blue", "grün", "red"]
    images, labels = data.val.__getitems__(list(range(9)))
    assert images.shape == (9, 3, 32, 32) and sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    red = images[labels == 2].float().mean(dim=(0, 2, 3))
    assert red[0] > red[1] and red[0] > red[2]  # the red class really is red
    again = load_data(make_config("vit", "tiny", {"dataset": "photos"}), store)
    first_five = [again.train.__getitems__(list(range(5)))[0], data.train.__getitems__(list(range(5)))[0]]
    assert first_five[0].equal(first_five[1]) and first_five[0].float().std() > 0  # same seeded split, same cache
    with pytest.raises(Exception, match="exists already"):
        registry.register(store, "photos", "imagefolder", root)


def test_separate_val_folder_and_unlabelled_datasets(store: Store, tmp_path: Path) -> None:
    write_folder(tmp_path / "train")
    val = tmp_path / "val"
    for name, colour in COLOURS.items():
        (val / name).mkdir(parents=True)
        for i in range(2):
            photo(colour, (32, 32), 900 + i).save(val / name / f"v{i}.png")
    registry.register(store, "split", "imagefolder", tmp_path / "train", val_path=val)
    data = load_data(make_config("vit", "tiny", {"dataset": "split"}), store)
    assert (len(data.train), len(data.val)) == (36, 6)

    registry.register(store, "loose", "unlabeled", tmp_path / "train")
    with pytest.raises(ConfigError, match="has no labels"):
        check_dataset(store, "loose", needs_labels=True)
    check_dataset(store, "loose", needs_labels=False)
    mae = create_run(store, "mae", preset="tiny", overrides=["dataset=loose", "batch_size=8"])
    assert mae.config["dataset"] == "loose"
    with pytest.raises(ConfigError, match="has no labels"):
        create_run(store, "vit", preset="tiny", overrides=["dataset=loose"])
    data = load_data(make_config("mae", "tiny", {"dataset": "loose"}), store)
    assert data.info.classes == [] and len(data.train) + len(data.val) == 36
    assert set(data.train.labels.tolist()) == {-1}
    assert validation_text(store.get_dataset("loose"), long=True) == "10% of the images held out (seeded)"


def write_fake_cifar10(root: Path, per_batch: int = 20) -> np.ndarray:
    """CIFAR-10's python layout: pickled dicts of bytes keys, data rows of 3072 bytes (R, G, B planes)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, fh, protocol=2)
        first = data if first is None else first
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_vis": 3072, b"num_cases_per_batch": per_batch}, fh, protocol=2)
    return first


def test_fake_cifar10_loads_in_the_real_layout(store: Store, tmp_path: Path) -> None:
    first = write_fake_cifar10(tmp_path / "cifar")
    record = registry.register(store, "cifar", "cifar10", tmp_path / "cifar")
    assert record.stats["classes"][:2] == ["airplane", "automobile"] and record.stats["val_images"] == 20
    data = load_data(make_config("vit", "tiny", {"dataset": "cifar"}), store)
    assert (len(data.train), len(data.val)) == (100, 20) and len(data.info.classes) == 10
    image, _ = data.train[0]
    expected = first[0].reshape(3, 32, 32)  # planes R, G, B of row 0
    assert np.array_equal(image.numpy(), expected)


def test_cifar_errors_say_where_to_put_the_files(store: Store, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no cifar10 batch files in .*cifar-10-batches-py"):
        registry.register(store, "c", "cifar10", tmp_path)
    folder = tmp_path / "evil" / "cifar-10-batches-py"
    write_fake_cifar10(tmp_path / "evil")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": __import__("os").getcwd}))  # not numpy: refused
    with pytest.raises(DataError, match="not a readable CIFAR batch file"):
        registry.register(store, "evil", "cifar10", tmp_path / "evil")


def test_cli_registers_and_shows_a_folder(cli, store: Store, tmp_path: Path) -> None:
    write_folder(tmp_path / "photos")
    done = cli("datasets", "add", "mine", str(tmp_path / "photos"), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["images"] == 36 and len(info["problems"]) == 6
    shown = cli("datasets", "show", "mine").stdout
    assert "skipped:" in shown and "notes.txt" in shown and "blue (12)" in shown
    assert "mine  (imagefolder)" in cli("datasets").stdout
    bad = cli("datasets", "add", "nothing", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "there is no folder" in bad.stderr
    used = create_run(store, "vit", preset="tiny", overrides=["dataset=mine", "batch_size=8"])
    store.update_run(used.id, status=RunStatus.CANCELLED)
    removed = cli("datasets", "remove", "mine")
    assert removed.returncode == 0 and "its files are untouched; 0 decoded cache(s) deleted" in removed.stderr
    assert f"run(s) {used.id} trained on it: they keep their results" in removed.stderr
    assert "mine" not in cli("datasets").stdout and (tmp_path / "photos").is_dir()


@pytest.mark.slow
def test_a_tiny_run_trains_on_a_user_folder(cli, store: Store, tmp_path: Path) -> None:
    write_folder(tmp_path / "photos", per_class=20)
    assert cli("datasets", "add", "photos", str(tmp_path / "photos"), "--val-fraction", "0.25").returncode == 0
    done = cli("train", "--method", "vit", "--preset", "tiny", "--set", "dataset=photos", "batch_size=8", "epochs=6",
               "log_every=2", "--wait")
    assert done.returncode == 0, done.stderr
    run = store.get_run(int(done.stdout))
    assert run.summary["val/top1"] >= 0.6, run.summary  # three colours: easy, chance is 1/3
    assert store.latest_artifact(run.id, "image", name="predictions") is not None


def test_many_images_decode_in_parallel_in_order(tmp_path: Path) -> None:
    """The cache of a large folder is decoded by several processes: the same arrays as one process
    decodes, in the same order, and a file that passed the check but will not decode keeps its place
    with the reason."""
    paths = []
    for i in range(folders.PARALLEL_FROM + 20):
        path = tmp_path / f"{i:04d}.png"
        photo(list(COLOURS.values())[i % 3], (24 + i % 7, 20), seed=i).save(path)
        paths.append(path)
    paths[100].write_bytes(paths[100].read_bytes()[:60])  # truncated after the header
    serial = list(folders.load_images(paths, 16, workers=1))
    parallel = list(folders.load_images(paths, 16, workers=2))
    assert len(parallel) == len(paths) and isinstance(parallel[100], str) and isinstance(serial[100], str)
    assert all(np.array_equal(a, b) for i, (a, b) in enumerate(zip(serial, parallel)) if i != 100)
    assert [a.shape for a in parallel[:3]] == [(16, 16, 3)] * 3


def test_a_large_jpeg_for_a_small_run_decodes_reduced_and_looks_as_decoded_whole(tmp_path: Path) -> None:
    """A 512 x 384 JPEG read at 32 px is decoded at 1/8 scale (libjpeg's DCT scaling, Pillow's
    `draft`): the picture is within a few grey levels of decoding it whole, then resizing."""
    from workbench.data import shapes

    path = tmp_path / "photo.jpg"
    Image.fromarray(shapes.draw(512, 2, np.random.default_rng(0))[:384]).save(path, quality=95)
    got = folders.load_image(path, 32).astype(float)
    with Image.open(path) as whole:
        whole.load()
        w, h = whole.size
        resized = whole.convert("RGB").resize((round(w * 32 / h), 32), Image.Resampling.BICUBIC)
    left = (resized.width - 32) // 2
    reference = np.asarray(resized.crop((left, 0, left + 32, 32))).astype(float)
    assert got.shape == (32, 32, 3) and np.abs(got - reference).mean() < 4


def test_a_new_folders_first_run_reads_while_its_cache_fills(store: Store, tmp_path: Path) -> None:
    """The first run on a folder starts at once: a batch the background has not reached is decoded
    for it, the finished cache holds what a batch read, and the next run opens the cache."""
    from workbench.data.files import FileDataset
    from workbench.data.loading import ArrayDataset, FillingDataset
    from workbench.engine.checkpoint import data_fingerprint

    write_folder(tmp_path / "photos", per_class=100)
    registry.register(store, "photos", "imagefolder", tmp_path / "photos")
    cfg = make_config("vit", "tiny", {"dataset": "photos", "image_size": 16})
    caches = set(paths.dataset_cache().iterdir())
    rank = load_data(cfg, store, fill=False)  # a data-parallel run's other rank: it reads the files ...
    assert isinstance(rank.train, FileDataset) and set(paths.dataset_cache().iterdir()) == caches  # ... no fill
    data = load_data(cfg, store)
    assert isinstance(data.train, FillingDataset) and any("decoded into the cache as training" in n for n in data.notes)
    assert rank.info == data.info and data_fingerprint(rank) == data_fingerprint(data)  # the ranks agree
    assert rank.train.items == [(p, int(label)) for p, label in zip(data.train.filling.paths["train"],
                                                                     data.train.filling.labels["train"])]
    assert any(n.startswith("skipped") and "truncated.png" in n for n in data.notes)  # found broken when added
    filling = data.train.filling
    last = list(range(len(data.train) - 8, len(data.train)))
    images, labels = data.train.__getitems__(last)  # before the background gets there
    files = filling.paths["train"]
    expected = np.stack([folders.load_image(files[i], 16) for i in last])
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), expected)
    filling.thread.join()
    assert (filling.folder / "meta.json").exists() and filling.failed == []
    cached = np.load(filling.folder / "train_images.npy")
    assert np.array_equal(cached[last], expected) and np.array_equal(cached[0], folders.load_image(files[0], 16))
    again = load_data(cfg, store)
    assert type(again.train) is ArrayDataset and again.info == data.info
    assert (len(again.train), len(again.val)) == (len(data.train), len(data.val))


def test_an_image_that_stopped_decoding_stops_the_run_that_reaches_it(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_folder(root)
    registry.register(store, "photos", "imagefolder", root)
    victim = root / "red" / "ímage_5.png"
    victim.write_bytes(victim.read_bytes()[:60])  # its header still reads, its pixels do not
    data = load_data(make_config("vit", "tiny", {"dataset": "photos"}), store)
    filling = data.train.filling
    split, index = next((s, i) for s in ("train", "val") for i, p in enumerate(filling.paths[s]) if p == victim)
    dataset = data.train if split == "train" else data.val
    filling.thread.join()
    with pytest.raises(DataError, match=r"ímage_5.png could not be decoded .*; fix or remove it and resume"):
        dataset.__getitems__([index])
    assert [Path(p).name for p, _ in filling.failed] == ["ímage_5.png"]
    assert not filling.folder.exists() and not filling.tmp.exists()  # no cache with a hole is kept


def test_a_changed_validation_folder_is_read_again(store: Store, tmp_path: Path) -> None:
    """A separate validation folder is part of what a run trains on: images added to it are in the
    next run's validation set, and the run's log says it changed (the cache was keyed on the
    training folder alone and kept the old validation images). An image found broken in its
    pixels when the folder was added stays out after the change."""
    write_folder(tmp_path / "train")
    val = tmp_path / "val"
    for name, colour in COLOURS.items():
        (val / name).mkdir(parents=True)
        photo(colour, (32, 32), 900).save(val / name / "v0.png")
    cut = val / "red" / "cut.png"
    photo(COLOURS["red"], (32, 32), 901).save(cut)
    cut.write_bytes(cut.read_bytes()[:60])  # its header still reads, its pixels do not
    (tmp_path / "val-link").symlink_to(val)  # given through a link: the record keeps the resolved folder
    record = registry.register(store, "split", "imagefolder", tmp_path / "train", val_path=tmp_path / "val-link")

    def broken_in_val() -> list[str]:
        return [Path(p).name for p, _ in store.get_dataset("split").stats["val_problems"]]

    assert broken_in_val() == ["cut.png"] and record.val_path == str(val)
    cfg = make_config("vit", "tiny", {"dataset": "split"})
    data = load_data(cfg, store)
    data.train.filling.thread.join()
    assert len(data.val) == 3 and data.train.filling.failed == []
    assert not any("validation folder changed" in n for n in data.notes)
    photo(COLOURS["blue"], (32, 32), 902).save(val / "blue" / "v1.png")
    again = load_data(cfg, store)
    assert len(again.val) == 4
    assert any("its validation folder changed since it was added (3 -> 4 images)" in n for n in again.notes)
    again.train.filling.thread.join()
    assert again.train.filling.failed == [] and broken_in_val() == ["cut.png"]  # still left out
    assert again.train.filling.folder.is_dir() and not data.train.filling.folder.exists()  # the old cache went
    assert store.get_dataset("split").stats["val_images"] == 4
    assert not any("validation folder changed" in n for n in load_data(cfg, store).notes)  # said once

    stats = dict(store.get_dataset("split").stats)
    del stats["val_fingerprint"]  # a record from before it was kept: given one, its problems kept
    store.update_dataset("split", stats=stats)
    assert not any("validation folder changed" in n for n in load_data(cfg, store).notes)
    assert store.get_dataset("split").stats["val_fingerprint"] and broken_in_val() == ["cut.png"]


def test_forgetting_drops_only_the_caches_of_that_dataset(tmp_path: Path) -> None:
    """Two stores may share a cache folder with a dataset of one name each, in other folders."""
    from workbench.data.cache import drop_caches

    def cache(folder: str, **meta: str) -> Path:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "meta.json").write_text(json.dumps(meta))
        return tmp_path / folder

    mine, theirs = cache("imagefolder-a-32px", name="x", path="/data/a"), cache("imagefolder-b-32px", name="x",
                                                                                 path="/data/b")
    old, other = cache("imagefolder-c-32px", name="x"), cache("imagefolder-d-32px", name="y", path="/data/a")
    filling = tmp_path / "imagefolder-e-32px.tmp-123"
    filling.mkdir()
    assert drop_caches(tmp_path, "x", "/data/a") == [mine, old]  # (one from before paths were kept: by name)
    assert theirs.is_dir() and other.is_dir() and filling.is_dir()


def test_a_batch_is_checked_against_the_training_set_and_images_added_since_count(store: Store, tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(6):
            photo((200, 60 * (name == "dog"), 40), (32, 32), seed=i).save(tmp_path / "pets" / name / f"{i}.png")
    registry.register(store, "pets", "imagefolder", tmp_path / "pets")  # 12 images: 10 to train on
    with pytest.raises(ConfigError, match=r"11 is larger than the training set of dataset 'pets' \(10 images, 2 of "
                                          r"its 12 held out for validation\)"):
        create_run(store, "vit", preset="tiny", overrides=["dataset=pets", "batch_size=11"])
    for name in ("cat", "dog"):  # more photos since it was registered: the run's start will see them
        for i in range(6, 12):
            photo((200, 60 * (name == "dog"), 40), (32, 32), seed=i).save(tmp_path / "pets" / name / f"{i}.png")
    assert create_run(store, "vit", preset="tiny", overrides=["dataset=pets", "batch_size=11"]).config["batch_size"] == 11
