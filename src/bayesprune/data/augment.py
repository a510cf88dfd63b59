"""The study's Fashion-MNIST augmentation: random rotation and scale, as a batched affine resampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bayesprune.config import RunConfig

ROTATION_DEGREES = (0.0, 360.0)  # torchvision RandomAffine(degrees=(0, 360), scale=(0.65, 1.25))
SCALE = (0.65, 1.25)
SIDE = 28
TEST_STREAM = 7_777_777  # offset of the generator that fixes the augmented test set


def affine(images: Tensor, degrees: Tensor, scale: Tensor) -> Tensor:
    """Rotate each flattened 28x28 image by degrees and scale it about its centre (nearest pixel, zero fill)."""
    n = len(images)
    angle = degrees * (math.pi / 180)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, SIDE, SIDE], align_corners=False)
    out = F.grid_sample(images.view(n, 1, SIDE, SIDE), grid, mode="nearest", align_corners=False)
    return out.view(n, -1)


def random_affine(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each image rotated by U(0, 360) degrees and scaled by U(0.65, 1.25), drawn from generator."""
    uniform = torch.rand(2, len(images), device=images.device, generator=generator)
    degrees = ROTATION_DEGREES[0] + uniform[0] * (ROTATION_DEGREES[1] - ROTATION_DEGREES[0])
    return affine(images, degrees, SCALE[0] + uniform[1] * (SCALE[1] - SCALE[0]))


def augments(cfg: RunConfig) -> bool:
    """Whether cfg's run sees augmented images (the study did so on Fashion-MNIST only)."""
    return cfg.deviates("augmentation") and cfg.dataset == "fashion-mnist"


def fixed_test_images(cfg: RunConfig, x: Tensor) -> Tensor:
    """The test images a run is scored on: augmented once from the run's seed where the study augmented."""
    if not augments(cfg):
        return x
    generator = torch.Generator(device=x.device).manual_seed(cfg.seed + TEST_STREAM)
    return random_affine(x, generator)
