"""Torch side of a folder read from its files (one too large to cache, or a data-parallel run's
other ranks while the first fills the cache): decoded by Pillow in the loader's processes
(`FileDataset`, `decode=loader`), or read as the files' bytes and decoded on the run's device
(`EncodedDataset` then `decode_batch`, `decode=device`: nvJPEG on a GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from workbench.data import folders
from workbench.errors import ConfigError, DataError


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
    size: int  # S: every image's side once decoded

    def __len__(self) -> int:
        return len(self.spans)

    def pin_memory(self) -> "Encoded":
        """The DataLoader's pinning (for a GPU)."""
        return Encoded(self.data.pin_memory(), self.spans, self.decoded.pin_memory(), self.paths, self.size)


class EncodedDataset(FileDataset):
    """`decode=device`: a folder read from its files, decoded by the run's device (`decode_batch`):
    the loader only reads each JPEG's bytes; other formats are decoded here with Pillow."""

    def __init__(self, items: list[tuple[Path, int]], image_size: int) -> None:
        jpeg_decoder()  # a torchvision without it fails the run at its start, in a sentence
        super().__init__(items, image_size)

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
            else:  # decoded here from the bytes just read
                decoded.append(_pillow(data, path, self.image_size))
                spans.append((end, end))
        size = self.image_size
        return Encoded(torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8) if end else
                       torch.empty(0, dtype=torch.uint8),
                       spans, torch.stack(decoded) if decoded else torch.empty(0, 3, size, size, dtype=torch.uint8),
                       [str(self.items[i][0]) for i in indices], size), torch.tensor([self.items[i][1] for i in indices])


DECODE_BYTES = 64 << 20  # JPEG bytes decoded at once (~10x as much decoded): a batch of large photos in parts
RESIZE_PIXELS = 1 << 26  # pixels resized at once (768 MB as float32)


def decode_batch(batch: Encoded, device: torch.device) -> torch.Tensor:
    """-> [B, 3, S, S] uint8 on `device`: the JPEGs decoded by torchvision's batched
    `decode_jpeg` (nvJPEG on a CUDA device; on any other, libjpeg-turbo on the CPU), then resized as
    `folders.load_image` resizes (`fit`), a few photos at a time when they are large. A batch it
    refuses is decoded image by image, and a JPEG it cannot read (a CMYK or 12-bit one, say) by
    Pillow, as `decode=loader` would. (torchvision 0.29 deprecates its decoders for TorchCodec's;
    torchvision's is the one measured on a GPU here.)"""
    where = device if device.type == "cuda" else torch.device("cpu")
    size = batch.size
    others = iter(batch.decoded)
    out: list[torch.Tensor | None] = [None if stop > start else next(others) for start, stop in batch.spans]
    for part in _parts([i for i, (start, stop) in enumerate(batch.spans) if stop > start], batch.spans):
        if where.type == "cuda":
            # nvJPEG's hardware engine writes its output before the work queued on the stream has run,
            # and the caching allocator may give it memory that work still reads: pytorch/vision#9606
            torch.cuda.current_stream(where).synchronize()
        decoded = _decode([batch.data[slice(*batch.spans[i])] for i in part], [batch.paths[i] for i in part], size,
                          where)
        for i, image in zip(part, _fit_all(decoded, size)):
            out[i] = image
    return torch.stack([image.to(device, non_blocking=True) for image in out])  # type: ignore[union-attr]


def _parts(jpegs: list[int], spans: list[tuple[int, int]]) -> Iterator[list[int]]:
    """The JPEGs' indices in runs of at most `DECODE_BYTES` of bytes (one JPEG at least)."""
    part: list[int] = []
    total = 0
    for i in jpegs:
        length = spans[i][1] - spans[i][0]
        if part and total + length > DECODE_BYTES:
            yield part
            part, total = [], 0
        part.append(i)
        total += length
    if part:
        yield part


def jpeg_decoder() -> Callable[..., Any]:
    """torchvision's `decode_jpeg` as `decode(data, device=)` -> RGB. torchvision 0.29 deprecates it
    for TorchCodec's decoders; a release without it is said in a sentence, not an ImportError."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError as exc:
        import torchvision

        raise ConfigError("decode", f"torchvision {torchvision.__version__} no longer has decode_jpeg, which "
                                    f"decode=device uses; use decode=loader") from exc
    return partial(decode_jpeg, mode=ImageReadMode.RGB)


def _decode(encoded: list[torch.Tensor], paths: list[str], size: int, where: torch.device) -> list[torch.Tensor]:
    """JPEG bytes -> images [3, H, W] uint8 on `where` (one of Pillow's, already [3, size, size])."""
    decode_jpeg = jpeg_decoder()
    try:
        return decode_jpeg(encoded, device=where)
    except RuntimeError:
        decoded = []
        for data, path in zip(encoded, paths):
            try:
                decoded.append(decode_jpeg(data, device=where))
            except RuntimeError:
                decoded.append(_pillow(data.numpy().tobytes(), path, size).to(where))
        return decoded


def _fit_all(images: list[torch.Tensor], size: int) -> list[torch.Tensor]:
    """`fit` of each image: those of one shape together, at most `RESIZE_PIXELS` at a time."""
    out: list[torch.Tensor | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for n, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(n)
    for shape, group in by_shape.items():
        step = max(1, RESIZE_PIXELS // (shape[-1] * shape[-2]))
        for k in range(0, len(group), step):
            chunk = group[k:k + step]
            for n, image in zip(chunk, fit(torch.stack([images[n] for n in chunk]), size)):
                out[n] = image
    return out  # type: ignore[return-value]


def _pillow(data: bytes, path: Path | str, size: int) -> torch.Tensor:
    """A file's bytes decoded by Pillow as `FileDataset` decodes its files: [3, size, size] uint8."""
    import io

    try:
        return torch.from_numpy(folders.load_image(io.BytesIO(data), size)).permute(2, 0, 1)
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
