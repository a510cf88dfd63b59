"""The networks' one activation pattern: ReLU after every layer but the last, which gives logits."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch.nn.functional as F
from torch import Tensor

Layer = TypeVar("Layer")


def _logits(x: Tensor) -> Tensor:
    """The last layer's output, left as it is."""
    return x


def relu_between(layers: Sequence[Layer]) -> Iterator[tuple[Layer, Callable[[Tensor], Tensor]]]:
    """Each layer with the activation that follows it: ReLU after every layer but the last."""
    last = len(layers) - 1
    for index, layer in enumerate(layers):
        yield layer, F.relu if index < last else _logits
