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


def affine(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x W^T + b; a sparse CSR W multiplies through torch.sparse."""
    product = torch.sparse.mm(weight, x.T).T if weight.layout == torch.sparse_csr else x @ weight.T
    return product + bias


def forward(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor],
            layer: Callable[[Tensor, Tensor, Tensor], Tensor] = affine) -> Tensor:
    """The MLP with these weight matrices and biases, ReLU between layers, each layer's product by `layer`."""
    for (weight, bias), activation in relu_between(list(zip(weights, biases))):
        x = activation(layer(x, weight, bias))
    return x
