"""The networks' one activation pattern: ReLU after every layer but the last, which gives logits."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
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


def forward(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensor:
    """The MLP with these weight matrices and biases, ReLU between layers; sparse CSR weights multiply through
    torch.sparse."""
    for (weight, bias), activation in relu_between(list(zip(weights, biases))):
        product = torch.sparse.mm(weight, x.T).T if weight.layout == torch.sparse_csr else x @ weight.T
        x = activation(product + bias)
    return x
