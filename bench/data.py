"""Image-folder loading speed: how fast each way of reading a JPEG folder delivers training
batches, to see which keeps a GPU fed.

The bench writes a labelled folder of `--images` JPEGs (quality 90) at 256 px from the built-in
generator (in parallel), then reads `--read` of them as batches of 224 x 224 uint8 [B, 3, H, W]:

- `pil_wK`: the workbench's own file path (`FileDataset`: Pillow decode, bicubic resize of the
  shorter side, centre crop) through its loader with K DataLoader workers;
- `decode_jpeg_cpu` / `decode_jpeg_cuda`: the workbench's `decode=device` path (`EncodedDataset`
  through its loader, `decode_batch`): torchvision's `decode_jpeg` on a batch of encoded files (on
  the GPU: nvJPEG), then an antialiased bicubic resize and centre crop in torch;
- `pil_32px` / `pil_32px_whole_decode`: one process decoding for a 32-px run, with libjpeg's
  reduced-scale decode (`folders.load_image`: a 256-px JPEG decoded at 1/8) and without it;
- `cache`: the decoded cache (`ArrayDataset` over a memory-mapped uint8 array, the workbench's
  path for datasets under 4 GiB decoded) through its loader, with the time to build that cache
  from the files (`cache_build_s`, `folders.load_images`: what the first run on a folder waits for);
- `randaugment_wK`: the cache's batches through timm's RandAugment (augment=randaugment, DeiT's and
  MAE fine-tuning's recipe) in the training loader with K workers (images/s only: augmented).

Each path gives images/s, images/s per CPU core it used, and its mean absolute difference from
the Pillow path in grey levels (0-255; JPEG decoders and resize kernels differ slightly). One JSON
line.

    python bench/data.py [--images 50000] [--read 8192] [--workers 0 4 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from workbench import paths

SIZE, CROP = 256, 224


def _write_chunk(job: tuple[str, int, int]) -> int:
    from PIL import Image

    from workbench.data import shapes

    root, start, stop = job
    for i in range(start, stop):
        label = i % len(shapes.CLASSES)
        image = shapes.draw(SIZE, label, np.random.default_rng([7, i]))
        Image.fromarray(image).save(Path(root) / shapes.CLASSES[label] / f"{i:06d}.jpg", quality=90)
    return stop - start


def write_folder(root: Path, count: int) -> float:
    """`count` JPEGs in class folders, written by one process per core; seconds taken."""
    from workbench.data import shapes

    for name in shapes.CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    step = 500
    with multiprocessing.get_context("spawn").Pool(paths.cpus()) as pool:
        pool.map(_write_chunk, [(str(root), i, min(count, i + step)) for i in range(0, count, step)])
    return time.perf_counter() - start


def registered_folder(store: Any, name: str, count: int) -> None:
    """A folder of `count` JPEGs (`write_folder`) registered as `name`, and read from its files,
    as a folder too large to cache is, by the runs of this process (bench/gpu.py's files cases)."""
    from workbench.data import registry

    root = Path(tempfile.mkdtemp(prefix="wb-jpegs-"))
    write_folder(root, count)
    registry.register(store, name, "imagefolder", root)
    registry.CACHE_LIMIT_BYTES = 0


def _whole(path: Path, size: int) -> np.ndarray:
    """`folders.load_image` of an RGB JPEG as it was before 2026-11-30: decoded at full size."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = size / min(image.size)
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                             Image.Resampling.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def loader_config(workers: int, batch: int, more: tuple[str, ...] | list[str] = ()) -> Any:
    from workbench.methods import make_config

    return make_config("vit", "tiny", [f"image_size={CROP}", "patch_size=16", f"batch_size={batch}",
                                       f"num_workers={workers}", *more])


def timed(batches: Iterator[Any], limit: int) -> tuple[float, Any]:
    """Images per second over batches until `limit` images; the first batch (for comparison)."""
    start, seen, first = time.perf_counter(), 0, None
    for images in batches:
        first = images if first is None else first
        seen += len(images)
        if seen >= limit:
            break
    return seen / (time.perf_counter() - start), first


def device_batches(items: list[tuple[Path, int]], batch: int, device: str) -> Iterator[Any]:
    """The workbench's `decode=device` path: its loader reads the files' bytes (`EncodedDataset`,
    auto workers), `decode_batch` decodes and resizes them on `device`."""
    import torch

    from workbench.data.files import EncodedDataset, decode_batch
    from workbench.data.loading import make_loader

    loader = make_loader(EncodedDataset(items, CROP), loader_config(-1, batch), train=False, device_type=device)
    for encoded, _ in loader:
        images = decode_batch(encoded, torch.device(device))
        if device == "cuda":
            torch.cuda.synchronize()
        yield images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--read", type=int, default=8192, help="images read per path")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8])
    parser.add_argument("--folder", default="", help="an existing folder written by this bench")
    parser.add_argument("--out", default="", help="also write the JSON line to this file")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-data-bench-"))
    import torch

    from workbench.data import folders
    from workbench.data.cache import cached_arrays
    from workbench.data.files import FileDataset
    from workbench.data.loading import ArrayDataset, make_loader

    root = Path(args.folder or tempfile.mkdtemp(prefix="wb-jpegs-"))
    cores = paths.cpus()
    result: dict[str, Any] = {"bench": "data", "images": args.images, "read": args.read, "size": SIZE, "crop": CROP,
                              "batch": args.batch, "cpu_cores": cores, "torch": torch.__version__}
    if not args.folder:
        result["write_s"] = round(write_folder(root, args.images), 1)
    scan = folders.scan(root, labelled=True, decode=False)
    items = scan.items[:: max(1, len(scan.items) // args.read)][:args.read]
    files = [path for path, _ in items]
    reference = torch.stack([torch.from_numpy(folders.load_image(f, CROP).copy()).permute(2, 0, 1)
                             for f in files[:args.batch]]).float()

    def record(name: str, rate: float, first: Any, cores_used: float) -> None:
        diff = (first.float().cpu() - reference[:len(first)]).abs().mean().item()
        result[name] = {"images_per_s": round(rate, 1), "per_core": round(rate / cores_used, 1),
                        "mean_abs_diff": round(diff, 2)}

    for workers in args.workers:
        if workers > cores:
            continue
        loader = make_loader(FileDataset(items, CROP), loader_config(workers, args.batch), train=False)
        rate, first = timed((images for images, _ in loader), len(items))
        record(f"pil_w{workers}", rate, first, max(1, workers))
        del loader
    torch.set_num_threads(cores)
    rate, first = timed(device_batches(items, args.batch, "cpu"), len(files))
    record("decode_jpeg_cpu", rate, first, cores)
    if torch.cuda.is_available():
        try:
            next(device_batches(items[:8], 8, "cuda"))  # nvJPEG's start-up
            rate, first = timed(device_batches(items, args.batch, "cuda"), len(files))
            record("decode_jpeg_cuda", rate, first, 1)
        except RuntimeError as exc:
            result["decode_jpeg_cuda"] = {"error": str(exc)[:200]}

    small = files[:2000]  # a small run's decode (32 px): libjpeg's reduced-scale decode, and without it
    for name, decode in (("pil_32px", folders.load_image), ("pil_32px_whole_decode", _whole)):
        start = time.perf_counter()
        for f in small:
            decode(f, 32)
        rate = len(small) / (time.perf_counter() - start)
        result[name] = {"images_per_s": round(rate, 1), "per_core": round(rate, 1)}

    def build(writer: Any) -> dict:  # the workbench's own decode (registry's cache build): several processes
        labels = np.array([label for _, label in items], dtype=np.int64)
        writer.split("train", len(items), folders.load_images(files, CROP), labels)
        writer.split("val", 1, iter([folders.load_image(files[0], CROP)]), labels[:1])
        return {"classes": scan.classes}

    start = time.perf_counter()
    splits, _ = cached_arrays(root.parent / f"{root.name}-cache", CROP, build)
    result["cache_build_s"] = round(time.perf_counter() - start, 2)
    result["cache_build_per_s"] = round(len(items) / result["cache_build_s"], 1)
    data = ArrayDataset(splits["train"].images, splits["train"].labels)
    loader = make_loader(data, loader_config(0, args.batch), train=False)
    rate, first = timed((images for images, _ in loader), len(items))
    record("cache", rate, first, 1)
    for workers in args.workers:  # the cache through RandAugment (augment=randaugment), in K loader processes
        if workers > cores:
            continue
        cfg = loader_config(workers, args.batch, ["augment=randaugment"])
        loader = make_loader(data, cfg, train=True, mean=(0.5, 0.5, 0.5))
        rate, _ = timed((images for images, _ in loader), min(len(items), len(data) // args.batch * args.batch))
        result[f"randaugment_w{workers}"] = {"images_per_s": round(rate, 1), "per_core": round(rate / max(1, workers), 1)}
        del loader
    line = json.dumps(result)
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
