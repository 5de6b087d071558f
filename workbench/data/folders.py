"""The user's own images: labelled folders (`root/class_x/…`, torchvision's ImageFolder layout,
images may sit in nested folders) and unlabelled folder trees (for pre-training).

`scan` finds the images and checks each one with Pillow; what it cannot use (a wrong file
type, an empty, corrupt or truncated file, one over the pixel limit, a folder it may not read,
a class folder with nothing readable) is skipped and reported by path with the reason, never
fatal, unless nothing usable is left. Images are converted to RGB (greyscale, palette and RGBA
on white; 16-bit and 32-bit greyscale scaled to 8 bits), resized so the shorter side fits and
centre-cropped to a square. numpy and Pillow only.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.errors import DataError
from workbench.paths import cpus

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_REPORTED = 500  # problems kept in a scan report
PILLOW_CEILING = 2 * Image.MAX_IMAGE_PIXELS  # Pillow refuses more (DecompressionBombError) whatever we say


def max_pixels() -> int:
    """The largest image (width x height) read, `WORKBENCH_MAX_IMAGE_PIXELS` or Pillow's ceiling
    (about 179 megapixels): a guard against decompression bombs, whose header promises pixels
    that decoding would try to allocate."""
    raw = os.environ.get("WORKBENCH_MAX_IMAGE_PIXELS", "")
    try:
        return min(int(raw), PILLOW_CEILING) if raw else PILLOW_CEILING
    except ValueError:
        raise DataError(f"WORKBENCH_MAX_IMAGE_PIXELS={raw!r} is not a whole number of pixels") from None


@contextmanager
def open_image(path: Path | BinaryIO) -> Iterator[Image.Image]:
    """Pillow's image; one over `max_pixels()` is refused with a sentence (DataError) before it is
    decoded, and Pillow's raw DecompressionBombWarning is not printed."""
    limit = max_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:  # its size is only in the message
            found = re.search(r"\((\d+) pixels\)", str(exc))
            pixels = int(found.group(1)) if found else PILLOW_CEILING + 1
            raise DataError(_too_large(f"{pixels / 1e6:,.0f} megapixels", limit)) from None
    with image:
        w, h = image.size
        if w * h > limit:
            raise DataError(_too_large(f"{w * h / 1e6:,.0f} megapixels, {w} x {h}", limit))
        yield image


def _too_large(size: str, limit: int) -> str:
    return f"too large ({size}; the limit is {limit / 1e6:,.0f} megapixels, WORKBENCH_MAX_IMAGE_PIXELS lowers it)"


@dataclass
class Scan:
    """What a folder holds: usable images (path, label; -1 when unlabelled) and skipped files."""

    root: Path
    labelled: bool
    classes: list[str] = field(default_factory=list)
    items: list[tuple[Path, int]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file looked at, usable or not
    _fingerprint: str | None = field(default=None, repr=False, compare=False)  # once: a stat of every file

    def report(self) -> dict:
        """JSON-able summary for the store and the GUI."""
        counts = np.bincount([label for _, label in self.items], minlength=len(self.classes)).tolist() \
            if self.labelled else []
        widths = [w for w, _ in self.sizes] or [0]
        heights = [h for _, h in self.sizes] or [0]
        return {"classes": self.classes, "images": len(self.items), "per_class": counts,
                "width": [min(widths), int(np.median(widths)), max(widths)],
                "height": [min(heights), int(np.median(heights)), max(heights)],
                "skipped": len(self.problems), "problems": [list(p) for p in self.problems[:MAX_REPORTED]]}

    def fingerprint(self) -> str:
        """Changes whenever a file is added, removed, renamed or modified, or a label changes (the
        same whether the scan decoded the images or only read their headers). Computed once, as a
        run's start asks it several times (20,000 files: a stat each)."""
        if self._fingerprint is not None:
            return self._fingerprint
        h = hashlib.sha1(f"{self.root}|{'|'.join(self.classes)}".encode())
        for path in self.files:
            try:
                stat = path.stat()
            except OSError:
                continue
            h.update(f"{path.relative_to(self.root)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        self._fingerprint = h.hexdigest()[:12]
        return self._fingerprint


def check_image(path: Path, decode: bool = True) -> tuple[tuple[int, int] | None, str]:
    """(width, height) and "" for a usable image, or None and why it is not. `decode` decodes it
    in full, so a truncated file is found when a dataset is added, not half-way through training;
    without it only the header is read (a quick re-check at each run start)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, f"not an image file ({path.suffix or 'no extension'})"
    try:
        if path.stat().st_size == 0:
            return None, "empty file (0 bytes)"
        with open_image(path) as image:
            if decode:
                image.load()
            return image.size, ""
    except DataError as exc:
        return None, str(exc)
    except PermissionError:
        return None, "cannot be read (permission denied)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return None, f"unreadable image ({type(exc).__name__}: {str(exc)[:120]})"


def _files(folder: Path, problems: list[tuple[str, str]]) -> Iterator[Path]:
    """Every file under `folder` (hidden ones left out); a folder that cannot be listed is a problem."""
    def unreadable(exc: OSError) -> None:
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
        problems.append((str(exc.filename or folder), f"folder cannot be read ({reason}); skipped"))

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(top) / name


def listing(root: Path, labelled: bool, classes: list[str] | None = None) -> Scan:
    """The files under `root`, and its class folders, with nothing opened: enough for
    `Scan.fingerprint`, so a folder unchanged since it was checked starts from its cache without
    every header read again (1.3 s for 20,000 JPEGs). Its `items` are every file, unchecked,
    labelled by class folder (`as_checked`); `classes` as for `scan` (a separate validation
    folder: only those class folders, labelled as in training). OSError when `root` cannot be listed."""
    root = Path(root).expanduser()
    result = Scan(root, labelled)
    groups = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if labelled else [root]
    if labelled and classes is not None:
        groups = [g for g in groups if g.name in classes]
    result.classes = (classes if classes is not None else [g.name for g in groups]) if labelled else []
    for folder in groups:
        found = list(_files(folder, result.problems))
        label = result.classes.index(folder.name) if labelled else -1
        result.files.extend(found)
        result.items.extend((path, label) for path in found)
    return result


def as_checked(listing: Scan, problems: list[list[str]]) -> Scan:
    """`listing` as the last `scan` of the same files found it (`problems`, every one of them):
    its images without a file opened."""
    skipped = {path for path, _ in problems}
    listing.problems = [(path, why) for path, why in problems]
    listing.items = [(path, label) for path, label in listing.items if str(path) not in skipped]
    return listing


def scan(root: Path, labelled: bool, classes: list[str] | None = None, decode: bool = True) -> Scan:
    """Find and check the images under `root`. Labelled: one subfolder per class (`classes`
    fixes the class list, as for a separate validation folder). `decode`: see `check_image`."""
    root = Path(root).expanduser()
    if root.is_file():
        raise DataError(f"{root} is a file; give the folder that holds the images")
    if not root.is_dir():
        raise DataError(f"there is no folder at {root}")
    result = Scan(root, labelled)
    if labelled:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for path in root.iterdir():
            if path.is_file() and not path.name.startswith("."):
                result.problems.append((str(path), "not inside a class folder"))
        names = classes if classes is not None else [f.name for f in folders]
        groups = [(names.index(f.name), f) for f in folders if f.name in names]
        for f in folders:
            if f.name not in names:
                result.problems.append((str(f), "class folder not in the training classes; skipped"))
    else:
        names, groups = [], [(-1, root)]
    found: dict[int, int] = {}
    for label, folder in groups:
        for path in _files(folder, result.problems):
            result.files.append(path)
            size, problem = check_image(path, decode)
            if problem:
                result.problems.append((str(path), problem))
            else:
                result.items.append((path, label))
                result.sizes.append(size)
                found[label] = found.get(label, 0) + 1
        if labelled and not found.get(label):
            result.problems.append((str(folder), "class folder has no readable images; skipped"))
    if labelled:
        kept = [i for i in range(len(names)) if found.get(i)] if classes is None else list(range(len(names)))
        remap = {old: new for new, old in enumerate(kept)}
        result.classes = [names[i] for i in kept]
        result.items = [(p, remap[label]) for p, label in result.items]
    if not result.items:
        reasons = "; ".join(f"{Path(p).name}: {why}" for p, why in result.problems[:3])
        raise DataError(f"no readable images in {root}" + (f" ({len(result.problems)} skipped: {reasons} …)"
                                                             if result.problems else " (it is empty)"))
    if labelled and classes is None and len(result.classes) < 2:
        empty = [Path(p).name for p, why in result.problems if why.startswith("class folder has no readable images")]
        raise DataError(f"{root} has {len(result.classes)} class folder with images"
                        + (f" ({', '.join(empty[:5])} has none it can read)" if empty else "")
                        + "; a labelled dataset needs at least 2 (one subfolder per class), or add it as an "
                          "unlabelled dataset")
    return result


def held_out(count: int, fraction: float) -> int:
    """How many of a class's `count` images `split` keeps for validation (at least one, never all)."""
    return min(count - 1, max(1, int(round(count * fraction)))) if count > 1 else 0


def split(items: list[tuple[Path, int]], fraction: float, seed: int = 0) -> tuple[list, list]:
    """A seeded split into (train, val) with `fraction` of every class (at least one) in val."""
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[tuple[Path, int]]] = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    train, val = [], []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))
        n_val = held_out(len(group), fraction)
        val += [group[i] for i in order[:n_val]]
        train += [group[i] for i in order[n_val:]]
    return train, val


def load_image(path: Path | BinaryIO, size: int) -> np.ndarray:
    """[size, size, 3] uint8: RGB (transparency over white), shorter side resized, centre crop."""
    with open_image(path) as image:
        w, h = image.size
        scale = size / min(w, h)
        # a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale still no smaller than the resize's
        # target (libjpeg's DCT scaling, as Pillow's own `thumbnail` does): a 256-px photo for a
        # 32-px run decodes 8x smaller, several times faster (bench/data.py); other formats ignore it
        image.draft(image.mode, (max(size, round(w * scale)), max(size, round(h * scale))))
        image.load()
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = _to_8bit(image).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.array(image.crop((left, top, left + size, top + size)))  # writable: torch wants to own it


PARALLEL_FROM = 256  # fewer images decode faster in this process than processes start


def load_images(paths: list[Path], size: int, workers: int = 0, nice: int = 0) -> Iterator[np.ndarray | str]:
    """`load_image` of each path in order, or the reason (an OSError's text) it could not be
    decoded. Many images are decoded by `workers` processes (0: up to 8, one per core): one
    process decodes ~190 JPEGs a second at 224 px (bench/data.py), so a 20,000-image folder's
    first run would wait ~2 minutes for it alone. `nice`: the processes' niceness, so that a
    decode in the background leaves the cores to a run that trains meanwhile."""
    workers = workers or min(8, cpus())
    jobs = [(path, size) for path in paths]
    if workers == 1 or len(paths) < PARALLEL_FROM:
        yield from map(_load_job, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawned, not forked: the caller may be a training process with torch's threads running
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=os.nice,
                             initargs=(nice,)) as pool:
        yield from pool.map(_load_job, jobs, chunksize=32)


def load_or_reason(path: Path, size: int) -> np.ndarray | str:
    """`load_image`, or the reason (an OSError's text) it could not be decoded."""
    try:
        return load_image(path, size)
    except OSError as exc:
        return str(exc)


def _load_job(job: tuple[Path, int]) -> np.ndarray | str:
    return load_or_reason(*job)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale ('I;16*', 'I', 'F') as 8-bit 'L'. Pillow's own convert clips
    them at 255, which turns a 16-bit photo almost all white. Integers are scaled from the 16-bit
    range (what PNG and TIFF store; from their maximum when a value is larger), floats from [0, 1]
    (from their own range when outside it)."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        lo, hi = (0.0, 1.0) if values.min() >= 0 and values.max() <= 1 else (values.min(), values.max())
    else:
        lo, hi = 0.0, max(65535.0, float(values.max()))
    scaled = (values - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
