"""CIFAR-10 and CIFAR-100 in their standard python-pickle batch layout, from a local folder.

The batch files are pickles, so they are read with an unpickler that accepts nothing but
numpy arrays and plain containers: a tampered file cannot run code. Downloading is
`workbench.data.download`'s (torchvision's, so not here: the GUI reads this module).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import DataError

LAYOUT = {
    "cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)], val=["test_batch"],
                    meta="batches.meta", names=b"label_names", labels=b"labels",
                    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": dict(folder="cifar-100-python", train=["train"], val=["test"], meta="meta",
                     names=b"fine_label_names", labels=b"fine_labels",
                     url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch file")


def read_batch(path: Path) -> dict:
    try:
        return _NumpyOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"{path} is not a readable CIFAR batch file ({exc})") from None


def batches_folder(kind: str, root: Path) -> Path:
    """The folder holding the batch files: `root` itself or its standard subfolder."""
    layout = LAYOUT[kind]
    root = Path(root).expanduser()
    for folder in (root / layout["folder"], root):
        if all((folder / name).is_file() for name in layout["train"] + layout["val"] + [layout["meta"]]):
            return folder
    raise DataError(f"no {kind} batch files in {root}: it should contain {layout['folder']}/ with "
                    f"{', '.join(layout['train'][:2])}… (extract {layout['url']} there, or "
                    f"`workbench datasets add NAME {root} --kind {kind} --download` when online)")


def read_split(kind: str, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """images [N, 32, 32, 3] uint8, labels [N], class names: every batch checked (its entries,
    image shape, one label per image, labels within the class list), else a DataError naming the
    file and what is wrong."""
    layout = LAYOUT[kind]
    names = class_names(kind, folder)
    images, labels = [], []
    for name in layout[split]:
        batch_images, batch_labels = _checked_batch(folder / name, layout["labels"], len(names))
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels), names


def class_names(kind: str, folder: Path) -> list[str]:
    """The class names the meta file lists."""
    path, key = folder / LAYOUT[kind]["meta"], LAYOUT[kind]["names"]
    meta = read_batch(path)
    if not isinstance(meta, dict) or not isinstance(meta.get(key), (list, tuple)) or not meta[key]:
        raise DataError(f"{path} is not a {kind} meta file: it has no list of class names under {key!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def _checked_batch(path: Path, label_key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        found = ", ".join(repr(k) for k in batch) if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise DataError(f"{path} is not a CIFAR batch: it needs b'data' and {label_key!r} entries "
                        f"(found {found or 'nothing'})")
    data = np.asarray(batch[b"data"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise DataError(f"{path}: b'data' should be uint8 rows of 3072 values (32 x 32 x 3), "
                        f"not {data.dtype} of shape {data.shape}")
    labels = np.asarray(batch[label_key])
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path} has {len(data)} images but {labels.size} labels ({labels.dtype}); "
                        f"each image needs one whole-number label")
    wrong = labels[(labels < 0) | (labels >= classes)]
    if len(wrong):
        raise DataError(f"{path}: label {int(wrong[0])} is outside 0-{classes - 1} (the meta file lists "
                        f"{classes} classes; {len(wrong)} labels are out of range)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def fingerprint(kind: str, folder: Path) -> str:
    """Changes whenever a batch file is replaced or modified (path, size and mtime of each)."""
    layout = LAYOUT[kind]
    h = hashlib.sha1(str(folder.resolve()).encode())
    for name in layout["train"] + layout["val"] + [layout["meta"]]:
        stat = (folder / name).stat()
        h.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:12]
