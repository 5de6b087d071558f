"""Torch side of the data: datasets (the cache here; a folder read from its files in `files`),
seeded epoch order, and the on-device batch transform.

Images travel as uint8 to the device and are converted and augmented there: cheap on the CPU
side, and the augmentation draws from the torch RNG that checkpoints restore. RandAugment, Pillow's
work image by image, is the loader's (`RandAugmented`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from workbench import paths
from workbench.config import TrainConfig
from workbench.data import DataInfo
from workbench.data.cache import Filling
from workbench.data.files import Encoded, EncodedDataset, FileDataset, decode_batch
from workbench.data.registry import resolve


class ArrayDataset(Dataset):
    """Images [N, H, W, 3] uint8 and labels [N]; fetches whole batches with one fancy index."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1), int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch [B, 3, H, W] uint8 as a view of [B, H, W, 3] memory: the training process only
        gathers the rows (6.6 ms for 256 images at 224 px, against 52 ms when it also sorted them
        for the read and transposed them); `BatchTransform` makes them contiguous on the device."""
        order = np.asarray(indices)
        return torch.from_numpy(self.images[order]).permute(0, 3, 1, 2), torch.from_numpy(self.labels[order])


class FillingDataset(ArrayDataset):
    """One split of a cache still being written (`cache.Filling`): a batch first decodes what the
    background has not reached. Read in the training process only (its writes are this process's)."""

    def __init__(self, filling: Filling, split: str) -> None:
        super().__init__(filling.images[split], filling.labels[split])
        self.filling, self.split = filling, split

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.filling.ensure(self.split, np.asarray([index]))
        return super().__getitem__(index)

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        self.filling.ensure(self.split, np.asarray(indices))
        return super().__getitems__(indices)


class RandAugmented(Dataset):
    """A training set's batches through timm's RandAugment (`recipe`: rand-m9-mstd0.5-inc1, say),
    image by image in Pillow, where the loader fetches them: in its worker processes when it has
    some. One process augments ~720 images/s at 224 px (bench/data.py): in the training process,
    between steps, that held a GPU that trains a ViT-B/16 at ~2,600 to its pace. A batch's draws are
    seeded by the run's seed and the batch's images, so they do not depend on which process augments
    it, and a resumed run augments as an uninterrupted one."""

    def __init__(self, dataset: Dataset, recipe: str, mean: Sequence[float], seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        self.transform = randaugment_transform(recipe, mean)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.dataset.__getitems__(indices)  # type: ignore[attr-defined]
        # timm's RandAugment draws from Python's and numpy's global generators: seeded for this batch,
        # then given back as they were (in the training process, Mixup draws from numpy's)
        kept = random.getstate(), np.random.get_state()
        entropy = np.random.SeedSequence([self.seed, *map(int, indices)]).generate_state(2)
        random.seed(int(entropy[0]))
        np.random.seed(int(entropy[1]))
        try:
            return torch.stack([_pil_transform(self.transform, image) for image in images]), labels
        finally:
            random.setstate(kept[0])
            np.random.set_state(kept[1])


def randaugment_transform(recipe: str, mean: Sequence[float]) -> Any:
    """timm's RandAugment for `recipe`, its fill the data's mean colour, and its posterize made safe."""
    from timm.data.auto_augment import rand_augment_transform

    transform = rand_augment_transform(recipe, {"img_mean": tuple(round(255 * m) for m in mean)})
    for op in transform.ops:
        if op.name.startswith("Posterize"):
            op.aug_fn = _posterize
    return transform


def _keep_batch(batch: tuple[Any, torch.Tensor]) -> tuple[Any, torch.Tensor]:
    """Every dataset here fetches whole batches (`__getitems__`): nothing left to collate."""
    return batch


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled batches whose order depends only on (seed, epoch), so a resumed run sees the same
    data order; `skip` drops the batches already trained on in that epoch. `repeats` > 1 is DeiT's
    repeated augmentation (its RASampler): each image comes `repeats` times in a row, so in one batch
    (differently augmented), and the epoch keeps its length, so it sees 1/`repeats` of the images."""

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, drop_last: bool, rank: int = 0,
                 world: int = 1, repeats: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.repeats = n, batch_size, seed, repeats
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world = rank, world  # data-parallel: this process takes every world-th image of a batch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        full = self.n // self.batch_size
        return (full if self.drop_last or self.n % self.batch_size == 0 else full + 1) - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).repeat_interleave(self.repeats)[:self.n].tolist()
        else:
            order = list(range(self.n))
        for b in range(self.skip, len(self) + self.skip):
            yield order[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world]


@dataclass
class DataBundle:
    """The two splits, and what a method may know about them."""

    train: Dataset
    val: Dataset
    info: DataInfo
    notes: list[str]  # for the run's log: what changed in the data since it was added, files skipped
    files: str = ""  # a folder's files as found (names, sizes, times: `Scan.fingerprint`); "" for the others


def load_data(cfg: TrainConfig, store: Any = None, fill: bool = True) -> DataBundle:
    """The run's dataset at its image size: cached arrays, or files for very large folders (and,
    when not `fill`, for a folder whose cache does not exist yet: `registry.resolve`)."""
    source = resolve(store, cfg.dataset, cfg.image_size, fill)
    if source.filling is not None:
        train, val = (FillingDataset(source.filling, s) for s in ("train", "val"))
    elif source.splits is not None:
        train, val = (ArrayDataset(source.splits[s].images, source.splits[s].labels) for s in ("train", "val"))
    else:
        reader = EncodedDataset if cfg.decode == "device" else FileDataset
        train, val = (reader(source.files[s], cfg.image_size) for s in ("train", "val"))
    meta = source.meta
    skipped = meta.get("problems", [])
    notes = list(meta.get("changes", [])) + [f"skipped {path}: {why}" for path, why in skipped[:20]] + (
        [f"... and {len(skipped) - 20} more skipped files (`workbench datasets show {cfg.dataset}`)"]
        if len(skipped) > 20 else []) + ([f"its {len(train) + len(val)} images are decoded into the cache as training "
                                         f"starts (a batch decodes what is not in yet); the next run opens it at once"]
                                        if source.filling is not None else [])
    return DataBundle(train=train, val=val, info=DataInfo(list(meta["classes"]), tuple(meta["mean"]),
                                                          tuple(meta["std"]), cfg.image_size), notes=notes,
                      files=meta.get("files", ""))


def loader_workers(cfg: TrainConfig, dataset: Dataset, device_type: str, world: int = 1,
                   augmenting: bool = False) -> int:
    """DataLoader worker processes: `num_workers`, or for -1 (auto) up to 8 per process when a GPU
    trains on images decoded from their files (one process decodes ~300 images/s, 8 ~2,500: a
    ViT-B/16 on an H200 takes ~2,600) or put through RandAugment (`augmenting`: Pillow's work too),
    else none: a decoded cache's batch is one gather in the training process, and 8 workers made a
    ViT-B/16 on an H200 slower (2,168 against 2,404 images/s), as would workers taking a CPU run's
    cores (bench/gpu.py, bench/data.py, bench/RESULTS.md)."""
    if isinstance(dataset, FillingDataset):
        return 0  # its background writes are this process's
    if cfg.num_workers >= 0:
        return cfg.num_workers
    if device_type != "cuda" or not (isinstance(dataset, FileDataset) or augmenting):
        return 0
    return max(1, min(8, paths.cpus() // world - 1))


def data_path(loader: DataLoader, device_type: str) -> str:
    """Where a `make_loader` loader's batches come from, in words for its log: what
    `train/data_wait` waits on."""
    dataset = loader.dataset
    helpers = f"{loader.num_workers} loader processes" if loader.num_workers else "the training process"
    augmented = f"; RandAugment in {helpers}" if isinstance(dataset, RandAugmented) else ""
    if isinstance(dataset, RandAugmented):
        dataset = dataset.dataset
    if isinstance(dataset, FillingDataset):
        return "the decoded cache, filling in the background (a batch decodes what it has not reached)" + augmented
    if isinstance(dataset, ArrayDataset):
        return f"the decoded cache (memory-mapped), a batch gathered in {helpers}" + augmented
    if isinstance(dataset, EncodedDataset):
        where = "the GPU (nvJPEG)" if device_type == "cuda" else "the CPU, in the training process"
        return f"the files, read by {helpers} and decoded on {where} (decode=device)"
    return f"the files, decoded by Pillow in {helpers} (decode=loader)" + augmented


def make_loader(dataset: Dataset, cfg: TrainConfig, *, train: bool, device_type: str = "cpu", rank: int = 0,
                world: int = 1, sharing: int | None = None, mean: Sequence[float] | None = None) -> DataLoader:
    """Batches of `cfg.batch_size` / `cfg.accum_steps` images (this process's 1/`world` share of
    each, when training data-parallel), in pinned memory for a GPU; put through RandAugment when
    training with augment=randaugment (`mean`: the data's, its fill colour). `sharing`: the processes
    whose loaders share the machine's cores (`world` unless given: rank 0's validation loader, whole
    batches, beside the others' training loaders)."""
    sampler = EpochBatchSampler(len(dataset), cfg.batch_size // cfg.accum_steps, cfg.seed, shuffle=train,
                                drop_last=train, rank=rank, world=world, repeats=cfg.repeated_aug if train else 1)
    augmenting = train and cfg.augment == "randaugment"
    workers = loader_workers(cfg, dataset, device_type, sharing or world, augmenting)
    if augmenting:
        if mean is None:
            raise ValueError("augment=randaugment fills with the data's mean colour: pass `mean`")
        dataset = RandAugmented(dataset, cfg.randaug, mean, cfg.seed)
    # its own generator: creating an iterator must not draw from the global RNG that
    # checkpoints restore, or a resumed run would augment differently from an uninterrupted one
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=device_type == "cuda",
                      collate_fn=_keep_batch, persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(cfg.seed))


class BatchTransform:
    """A loader's batch -> normalised float images on the device (and labels), augmented when
    training as the run asks:

    - `flip`: random horizontal flips; `crop_flip`: a random resized crop (area `crop_min`-100 %,
      aspect 3/4-4/3) then a flip, done for the whole batch at once on the device;
    - `randaugment`: crop and flip after timm's RandAugment, which the loader has applied
      (`RandAugmented`);
    - `reprob` > 0: timm's RandomErasing (per image, random-noise rectangles, after normalising);
    - `mixup` / `cutmix` > 0: timm's Mixup (one or the other per batch); labels become class
      probabilities [B, C] (label smoothing stays the loss's).

    Every draw comes from torch's generator of the run's device (drawn there: a draw copied to a GPU
    would make the host wait), or numpy's and Python's for timm's Mixup and RandomErasing: the run's
    seed seeds them and the checkpoint keeps them.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device, augment: str = "flip", *,
                 mixup: float = 0.0, cutmix: float = 0.0, num_classes: int = 0, crop_min: float = 0.35,
                 reprob: float = 0.0) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255
        self.device, self.augment, self.crop_min = device, augment, crop_min
        self.erase = self.mixer = None
        if reprob > 0:
            from timm.data.random_erasing import RandomErasing

            self.erase = RandomErasing(probability=reprob, mode="pixel", device=str(device))
        if (mixup > 0 or cutmix > 0) and num_classes:
            from timm.data import Mixup

            self.mixer = Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=0.0, num_classes=num_classes)

    @classmethod
    def for_run(cls, cfg: TrainConfig, info: DataInfo, device: torch.device) -> "BatchTransform":
        return cls(info.mean, info.std, device, cfg.augment, mixup=cfg.mixup, cutmix=cfg.cutmix,
                   num_classes=info.num_classes, crop_min=cfg.crop_min, reprob=cfg.reprob)

    def __call__(self, images: torch.Tensor | Encoded, labels: torch.Tensor,
                 train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(images, Encoded):  # decode=device
            images = decode_batch(images, self.device)
        x = (images.to(self.device, non_blocking=True).contiguous().float() - self.mean) / self.std
        labels = labels.to(self.device, non_blocking=True)
        if not train:
            return x, labels
        if self.augment in ("crop_flip", "randaugment"):
            x = random_resized_crop(x, scale=(self.crop_min, 1.0))
        if self.augment != "none":  # drawn on the device: a draw copied to a GPU makes the host wait for it
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if self.erase is not None:
            x = self.erase(x)
        if self.mixer is not None:
            x, labels = self.mixer(x, labels)
        return x, labels


def _posterize(image: Any, bits_to_keep: int, **kwargs: Any) -> Any:
    """timm's posterize, with 0 bits kept giving a black image as Pillow's own did before it
    refused them (Pillow 13.0 raises). timm 1.0.31 asks for 0 bits at RandAugment's top magnitude
    with `inc1`, DeiT's recipe: ~1 image in 300, a crash in a few steps of a 64-image batch."""
    from PIL import Image
    from timm.data.auto_augment import posterize

    return Image.new(image.mode, image.size) if bits_to_keep <= 0 else posterize(image, bits_to_keep, **kwargs)


def _pil_transform(transform: Any, image: torch.Tensor) -> torch.Tensor:
    """A PIL-image transform (timm's RandAugment) on one uint8 image [3, H, W]."""
    from PIL import Image

    out = transform(Image.fromarray(image.permute(1, 2, 0).numpy()))
    return torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1)


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float] = (0.35, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """A different random crop of every image [B, C, H, W], resized back to H x W (bilinear). The
    crops are drawn on x's device: drawn on the host, their copy to a GPU would wait for its queue."""
    b, device = x.shape[0], x.device
    area = torch.empty(b, device=device).uniform_(*scale)
    aspect = torch.exp(torch.empty(b, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])))
    w = (area * aspect).sqrt().clamp(max=1.0)
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, device=device) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, device=device) * 2 - 1) * (1 - h)
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)  # [B, 2, 3]
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def fixed_batch(data: DataBundle, transform: BatchTransform) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first validation images ([N, 3, H, W], N <= 16, transformed), the same in every
    snapshot so that progress is comparable; None with no validation images."""
    n = min(16, len(data.val))
    return transform(*data.val.__getitems__(list(range(n))), False) if n else None
