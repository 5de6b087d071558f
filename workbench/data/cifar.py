"""CIFAR-10 and CIFAR-100 in their standard python-pickle batch layout, from a local folder.

The batch files are pickles, so they are read with an unpickler that accepts nothing but
numpy arrays and plain containers: a tampered file cannot run code. Downloading is
`workbench.data.download`'s (torchvision's, so not here: the GUI reads this module).
"""

from __future__ import annotations

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
    """images [N, 32, 32, 3] uint8, labels [N], class names."""
    layout = LAYOUT[kind]
    images, labels = [], []
    for name in layout[split]:
        batch = read_batch(folder / name)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[layout["labels"]], dtype=np.int64))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in read_batch(folder / layout["meta"])[layout["names"]]]
    return np.concatenate(images), np.concatenate(labels), names
