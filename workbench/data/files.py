"""Torch side of a folder read from its files (one too large to cache, or a data-parallel run's
other ranks while the first fills the cache): decoded by Pillow in the loader's processes
(`FileDataset`, `decode=loader`), or read as the files' bytes and decoded on the run's device
(`EncodedDataset` then `decode_batch`, `decode=device`: nvJPEG on a GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from workbench.data import folders
from workbench.errors import DataError


class FileDataset(Dataset):
    """Images decoded from their files on every read (datasets too large to cache), in the
    DataLoader's worker processes when `num_workers` > 0."""

    def __init__(self, items: list[tuple[Path, int]], image_size: int) -> None:
        self.items, self.image_size = items, image_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        try:
            image = folders.load_image(path, self.image_size)
        except OSError as exc:
            raise DataError(_unreadable(path, exc)) from None
        return torch.from_numpy(image).permute(2, 0, 1), label

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.stack([self[i][0] for i in indices]), torch.tensor([self.items[i][1] for i in indices])


def _unreadable(path: Path | str, exc: Exception) -> str:
    return f"{path} could not be read any more ({exc}); fix or remove it and resume"


JPEG_START = b"\xff\xd8\xff"


@dataclass
class Encoded:
    """A batch of images as their files' bytes, for `decode_batch` on the device. Every JPEG's bytes
    lie end to end in `data`, image i's at `spans[i]`; an image that is not a JPEG comes decoded
    already, in `decoded` (in batch order), its span empty. A few tensors per batch, not one per
    image: a loader process hands each tensor over as an open file (torch's `file_descriptor`
    sharing), and with one per image two processes' batches of 256 hung a process allowed 256."""

    data: torch.Tensor  # [total bytes] uint8
    spans: list[tuple[int, int]]  # (start, stop) in `data`, per image
    decoded: torch.Tensor  # [K, 3, S, S] uint8
    paths: list[str]

    def __len__(self) -> int:
        return len(self.spans)

    def pin_memory(self) -> "Encoded":
        """The DataLoader's pinning (for a GPU)."""
        return Encoded(self.data.pin_memory(), self.spans, self.decoded.pin_memory(), self.paths)


class EncodedDataset(FileDataset):
    """`decode=device`: a folder read from its files, decoded by the run's device (`decode_batch`):
    the loader only reads each JPEG's bytes; other formats are decoded here with Pillow."""

    def __getitems__(self, indices: Sequence[int]) -> tuple[Encoded, torch.Tensor]:  # type: ignore[override]
        chunks: list[bytes] = []
        spans: list[tuple[int, int]] = []
        decoded: list[torch.Tensor] = []
        end = 0
        for i in indices:
            path = self.items[i][0]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataError(_unreadable(path, exc)) from None
            if data.startswith(JPEG_START):
                chunks.append(data)
                spans.append((end, end + len(data)))
                end += len(data)
            else:
                decoded.append(self[i][0])
                spans.append((end, end))
        size = self.image_size
        return Encoded(torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8) if end else
                       torch.empty(0, dtype=torch.uint8),
                       spans, torch.stack(decoded) if decoded else torch.empty(0, 3, size, size, dtype=torch.uint8),
                       [str(self.items[i][0]) for i in indices]), torch.tensor([self.items[i][1] for i in indices])


def decode_batch(batch: Encoded, size: int, device: torch.device) -> torch.Tensor:
    """-> [B, 3, size, size] uint8 on `device`: the JPEGs decoded in one call of torchvision's
    `decode_jpeg` (nvJPEG on a GPU, libjpeg-turbo on a CPU), then resized as `folders.load_image`
    resizes (`fit`). A batch it refuses is decoded image by image, and a JPEG it cannot read (a
    CMYK or 12-bit one, say) by Pillow, as `decode=loader` would. (torchvision 0.29 deprecates its
    decoders for TorchCodec's; theirs is the one measured on a GPU here.)"""
    from torchvision.io import ImageReadMode, decode_jpeg

    others = iter(batch.decoded.to(device, non_blocking=True))
    out: list[torch.Tensor | None] = [None if stop > start else next(others) for start, stop in batch.spans]
    jpegs = [i for i, (start, stop) in enumerate(batch.spans) if stop > start]
    encoded = [batch.data[start:stop] for start, stop in batch.spans if stop > start]
    try:
        decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device) if encoded else []
    except RuntimeError:
        decoded = []
        for i, data in zip(jpegs, encoded):
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(_pillow(data, batch.paths[i], size).to(device))
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for n, image in enumerate(decoded):
        by_shape.setdefault(tuple(image.shape), []).append(n)
    for group in by_shape.values():  # one resize per size of image (a folder of one size: one)
        for n, image in zip(group, fit(torch.stack([decoded[n] for n in group]), size)):
            out[jpegs[n]] = image
    return torch.stack(out)  # type: ignore[arg-type]


def _pillow(data: torch.Tensor, path: str, size: int) -> torch.Tensor:
    import io

    try:
        return torch.from_numpy(folders.load_image(io.BytesIO(data.numpy().tobytes()), size)).permute(2, 0, 1)
    except OSError as exc:
        raise DataError(_unreadable(path, exc)) from None


def fit(images: torch.Tensor, size: int) -> torch.Tensor:
    """[B, 3, H, W] uint8 -> [B, 3, size, size] uint8: the shorter side resized to `size` (bicubic,
    antialiased, as Pillow's), then the centre crop: `folders.load_image` in torch."""
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    th, tw = max(size, round(h * scale)), max(size, round(w * scale))
    if (th, tw) != (h, w):
        images = F.interpolate(images.float(), size=(th, tw), mode="bicubic", antialias=True, align_corners=False)
        images = images.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (th - size) // 2, (tw - size) // 2
    return images[..., top:top + size, left:left + size]
