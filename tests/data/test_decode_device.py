"""`decode=device`: a folder read from its files as JPEG bytes, decoded where the run trains
(torchvision's `decode_jpeg`: nvJPEG on a GPU, libjpeg-turbo here), as Pillow's path decodes it."""

from pathlib import Path

import pytest

from tests.data.test_user_datasets import COLOURS, photo, write_folder
from workbench.data import registry
from workbench.data.loading import load_data
from workbench.errors import DataError
from workbench.jobs import create_run
from workbench.methods import make_config
from workbench.store import Store


def test_a_folder_decoded_on_the_device_gives_the_loaders_images(store: Store, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """decode=device: the loader reads each JPEG's bytes and torchvision decodes the batch where the
    run trains (here the CPU; nvJPEG on a GPU). Other formats, greyscale and CMYK JPEGs come out as
    Pillow's path gives them, up to another decoder's and resize's rounding."""
    import torch

    from workbench.data.files import Encoded, EncodedDataset, FileDataset
    from workbench.data.loading import BatchTransform, make_loader
    from workbench.engine.execute import execute

    root = tmp_path / "photos"
    write_folder(root, per_class=10)
    photo(COLOURS["red"], (90, 60), 7).convert("CMYK").save(root / "red" / "cmyk.jpg")
    registry.register(store, "photos", "imagefolder", root)
    cfg = make_config("vit", "tiny", {"dataset": "photos", "image_size": 24, "decode": "device", "batch_size": 8})
    data = load_data(cfg, store, fill=False)  # read from the files, as a folder too large to cache is
    assert type(data.train) is EncodedDataset
    pillow = FileDataset(data.train.items, 24)
    transform = BatchTransform.for_run(cfg, data.info, torch.device("cpu"))
    seen = 0
    for encoded, labels in make_loader(data.train, cfg, train=False):
        assert isinstance(encoded, Encoded) and encoded.data.numel() and len(encoded.decoded)  # bytes and pictures
        indices = [next(i for i, (p, _) in enumerate(data.train.items) if str(p) == path) for path in encoded.paths]
        images, expected_labels = pillow.__getitems__(indices)
        x, y = transform(encoded, labels, False)
        reference, _ = transform(images, expected_labels, False)
        assert x.shape == (len(indices), 3, 24, 24) and torch.equal(y, expected_labels)
        assert (x - reference).abs().mean() * transform.std.mean() < 3  # grey levels
        seen += len(indices)
    assert seen == len(data.train) and any(p.name == "cmyk.jpg" for p, _ in data.train.items + data.val.items)
    monkeypatch.setattr(registry, "CACHE_LIMIT_BYTES", 0)  # a run on it reads the files too
    run = create_run(store, "vit", preset="tiny", overrides=["dataset=photos", "image_size=24", "decode=device",
                                                             "batch_size=8", "max_steps=6", "eval_every=3"])
    said: list[str] = []
    assert execute(store, run.id, log=said.append) == "finished", store.get_run(run.id).error
    assert store.artifacts(run.id, "image")  # its snapshots: the first validation images, decoded the same way
    assert ("data: batches from the files, read by the training process and decoded on the CPU, in the training "
            "process (decode=device)") in said


def test_a_jpeg_that_stopped_decoding_names_itself_when_decoded_on_the_device(store: Store, tmp_path: Path) -> None:
    import torch

    from workbench.data.files import decode_batch

    root = tmp_path / "photos"
    write_folder(root)
    registry.register(store, "photos", "imagefolder", root)
    data = load_data(make_config("vit", "tiny", {"dataset": "photos", "decode": "device"}), store, fill=False)
    victim = next(i for i, (p, _) in enumerate(data.train.items) if p.suffix == ".jpg")
    path = data.train.items[victim][0]
    path.write_bytes(path.read_bytes()[:40])  # still starts as a JPEG; its pixels are gone
    encoded, _ = data.train.__getitems__([0, victim])
    with pytest.raises(DataError, match=f"{path.name} could not be read any more .*; fix or remove it and resume"):
        decode_batch(encoded, torch.device("cpu"))


def test_a_torchvision_without_decode_jpeg_fails_a_device_decoded_run_at_its_start_in_a_sentence(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision 0.29 deprecates decode_jpeg for TorchCodec's decoders: a release that drops it."""
    import torchvision.io

    from workbench.engine.execute import execute

    root = tmp_path / "photos"
    write_folder(root)
    registry.register(store, "photos", "imagefolder", root)
    monkeypatch.setattr(registry, "CACHE_LIMIT_BYTES", 0)  # read from its files, as decode=device does
    monkeypatch.delattr(torchvision.io, "decode_jpeg")
    run = create_run(store, "vit", preset="tiny", overrides=["dataset=photos", "decode=device", "max_steps=2",
                                                             "batch_size=8"])
    assert execute(store, run.id, log=lambda _: None) == "failed"
    error = store.get_run(run.id).error
    assert error.startswith("decode: torchvision ") and "no longer has decode_jpeg, which decode=device uses; " \
        "use decode=loader" in error, error


def test_loader_processes_hand_over_encoded_batches_within_a_few_open_files(tmp_path: Path) -> None:
    """A loader process hands each tensor to the training process as an open file: a batch of 128
    JPEGs as 128 tensors hung a process allowed 64 open files; as one blob it reads them all."""
    import subprocess
    import sys

    for i in range(512):
        photo(COLOURS["red"], (24, 20), i).save(tmp_path / f"{i}.jpg")
    script = f"""
import resource, torch
from pathlib import Path
from workbench.data.files import EncodedDataset, decode_batch
from workbench.data.loading import make_loader
from workbench.methods import make_config
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
items = [(p, 0) for p in sorted(Path({str(tmp_path)!r}).glob("*.jpg"))]
cfg = make_config("vit", "tiny", ["batch_size=128", "num_workers=2"])
seen = sum(len(decode_batch(x, torch.device("cpu"))) for x, _ in make_loader(EncodedDataset(items, 16), cfg,
                                                                                 train=True))
print(seen)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["512"], done.stderr[-2000:]


def test_a_batch_decoded_on_the_device_in_parts_and_elsewhere_than_cuda(store: Store, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Large photos are decoded and resized a few at a time (the same pictures as all at once), and
    a device that is neither CUDA nor the CPU gets the batch decoded on the CPU, moved as one."""
    import torch

    from workbench.data import files

    root = tmp_path / "photos"
    write_folder(root)
    registry.register(store, "photos", "imagefolder", root)
    data = load_data(make_config("vit", "tiny", {"dataset": "photos", "decode": "device"}), store, fill=False)
    encoded, _ = data.train.__getitems__(list(range(len(data.train))))
    size = data.info.image_size
    whole = files.decode_batch(encoded, torch.device("cpu"))
    monkeypatch.setattr(files, "DECODE_BYTES", 1)  # one JPEG at a time
    monkeypatch.setattr(files, "RESIZE_PIXELS", 1)  # one picture at a time
    assert torch.equal(files.decode_batch(encoded, torch.device("cpu")), whole)
    elsewhere = files.decode_batch(encoded, torch.device("meta"))  # as MPS would: not a decode_jpeg device
    assert elsewhere.device.type == "meta" and elsewhere.shape == whole.shape == (len(data.train), 3, size, size)
