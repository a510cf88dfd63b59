"""The images a run sees: its training split less the validation hold-out, and the test split it is scored on."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from bayesprune.config import DATASETS, RunConfig
from bayesprune.data.augment import fixed_test_images
from bayesprune.data.datasets import load_split

Split = tuple[Tensor, Tensor]


def split_validation(cfg: RunConfig, x: Tensor, y: Tensor) -> tuple[Split, Split | None]:
    """(training images, labels) and the held-out last `cfg.validation` of them, or None without a split."""
    if not cfg.validation:
        return (x, y), None
    return (x[:-cfg.validation], y[:-cfg.validation]), (x[-cfg.validation:], y[-cfg.validation:])


def training_splits(cfg: RunConfig, root: Path | None, device: str | torch.device) -> tuple[Split, Split | None]:
    """The images a run fits and, with a validation split, the ones it makes its choices on."""
    return split_validation(cfg, *load_split(cfg.dataset, True, root, device, cfg.pixel_divisor, cfg.train_subset))


def scored_split(cfg: RunConfig, root: Path | None, device: str | torch.device) -> Split:
    """The test split a run is scored on, augmented where the study augmented (see fixed_test_images)."""
    x, y = load_split(cfg.dataset, False, root, device, cfg.pixel_divisor, cfg.test_subset)
    return fixed_test_images(cfg, x), y


NOISE_SEED = 0  # the synthetic shift's images are the same for every run


def noise_images(count: int, pixel_divisor: float, seed: int = NOISE_SEED) -> Tensor:
    """The synthetic shift: images of independent uniform pixel values 0-255, scaled as the data are, seeded."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 28 * 28), generator=generator).float() / pixel_divisor


def shifted_splits(cfg: RunConfig, root: Path | None, device: str | torch.device) -> dict[str, Tensor]:
    """Out-of-distribution images as many as the run's test images: `other`, the other dataset's test images
    (MNIST for a Fashion-MNIST run and the other way round), and `noise` (`noise_images`)."""
    other = next(d for d in DATASETS if d != cfg.dataset)
    x, _ = load_split(other, False, root, device, cfg.pixel_divisor, cfg.test_subset)
    return {"other": x, "noise": noise_images(len(x), cfg.pixel_divisor).to(device)}
