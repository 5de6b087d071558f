"""Downloading CIFAR-10/100 into a folder, through torchvision (which checks the archive's MD5).
Only the command line imports this: the GUI's data path stays free of torch and torchvision."""

from __future__ import annotations

from pathlib import Path

from workbench.data.cifar import LAYOUT
from workbench.errors import DataError


def download_cifar(kind: str, root: Path) -> Path:
    """Download and extract `kind` into `root` (when online); the folder of its batch files."""
    layout = LAYOUT[kind]
    root = Path(root).expanduser()
    try:
        import torchvision

        dataset_class = torchvision.datasets.CIFAR10 if kind == "cifar10" else torchvision.datasets.CIFAR100
        dataset_class(str(root), train=True, download=True)
    except Exception as exc:  # URLError, socket errors, a bad archive: all mean "not downloaded"
        raise DataError(f"{kind} could not be downloaded ({type(exc).__name__}: {exc}); this machine may be "
                        f"offline. Download {layout['url']} yourself and extract it into {root}") from None
    return root / layout["folder"]
