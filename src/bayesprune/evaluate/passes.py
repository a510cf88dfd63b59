"""Forward passes for scoring, at the cost of the weights a pruned network still has.

Scoring feeds 10 000 images at a time, so its cost is matrix products. A pruned layer reads only the input columns
some weight still reads (the rest are exact zeros: leaving them out changes nothing but the order of a sum), and a
layer sparse enough to gain multiplies in compressed sparse rows. BBB's Monte Carlo passes draw each sample's
noise exactly as `BayesianMLP.forward` does (the same generator calls in the same order), and MC dropout reuses the
first layer's product, which no dropout mask precedes, across its passes and from the deterministic pass. MC
dropout's masks are drawn as `F.dropout` draws them on the CPU in the network's own forward (`bernoulli_`, filled
row by row) and multiply by position, whatever layout a sparse product leaves; the masks of a seeded set do not
depend on the weights, so a sweep draws them once and every pruned network reuses them. So every pass computes what
the network's own forward computes, faster.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesprune.model.activation import forward, relu_between
from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.models import MLP

PREDICTIONS = ("deterministic", "mc")
# Share of nonzero weights below which a layer multiplies in compressed sparse rows: measured on this project's
# CPUs at 10 000 images (784-500-500-10), CSR beats the dense product only from about 5 % density down.
CSR_DENSITY = 0.03


def read_columns(weight: Tensor) -> Tensor | None:
    """Indices of the input columns some weight reads, or None where every column is read."""
    alive = (weight != 0).any(dim=0)
    return None if bool(alive.all()) else alive.nonzero().squeeze(1)


def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x W^T + b for a dense or pruned W, at the cost of the weights it keeps (see the module docstring)."""
    if x.device.type != "cpu" or weight.dim() != 2:
        return F.linear(x, weight, bias)
    columns = read_columns(weight)
    if columns is not None:
        x, weight = x.index_select(1, columns), weight.index_select(1, columns)
    if weight.numel() and torch.count_nonzero(weight) < CSR_DENSITY * weight.numel():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse.mm(weight.to_sparse_csr(), x.T.contiguous()).T + bias
    return F.linear(x, weight, bias)


def network(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensor:
    """Logits of the ReLU network with these weights and biases; a hidden unit that no weight of the next layer
    reads is not computed."""
    weights, biases = list(weights), list(biases)
    for k in range(len(weights) - 1):
        read = read_columns(weights[k + 1]) if x.device.type == "cpu" else None
        if read is not None:
            weights[k], biases[k] = weights[k].index_select(0, read), biases[k].index_select(0, read)
            weights[k + 1] = weights[k + 1].index_select(1, read)
    return forward(x, weights, biases, layer=linear)


def mlp_layers(model: MLP) -> tuple[list[nn.Linear], list[float], float]:
    """The linear layers, the dropout rate after each hidden one, and the input dropout rate."""
    linears, after, before = [], [], 0.0
    for module in model.net:
        if isinstance(module, nn.Linear):
            linears.append(module)
            after.append(0.0)
        elif isinstance(module, nn.Dropout):
            if linears:
                after[-1] = module.p
            else:
                before = module.p
    return linears, after[:-1], before


def shares_first_layer(model: nn.Module) -> bool:
    """Whether a network's deterministic pass and its MC dropout passes share the first layer: a dropout MLP with no
    dropout on its input."""
    return isinstance(model, MLP) and has_mc(model) and not mlp_layers(model)[2]


@torch.no_grad()
def first_activation(model: MLP, x: Tensor) -> Tensor:
    """The first hidden layer's output, every unit of it: the product its deterministic pass and its MC dropout
    passes share where no dropout precedes it (`shares_first_layer`)."""
    layer = mlp_layers(model)[0][0]
    return torch.relu(linear(x, layer.weight, layer.bias))


@torch.no_grad()
def mean_logits(model: nn.Module, x: Tensor, first: Tensor | None = None) -> Tensor:
    """Logits of the network as deployed: dropout off, BBB at its posterior mean; an MLP continues from its first
    layer's output where it is given (`first_activation`)."""
    model.eval()
    if isinstance(model, BayesianMLP):
        return network(x, [layer.weight_mu for layer in model.layers], [layer.bias_mu for layer in model.layers])
    if isinstance(model, MLP):
        linears = mlp_layers(model)[0][1:] if first is not None else mlp_layers(model)[0]
        return network(x if first is None else first, [layer.weight for layer in linears], [layer.bias for layer in linears])
    return model(x)


@torch.no_grad()
def ensemble_probabilities(model: BayesianMLP, x: Tensor, samples: int) -> Tensor:
    """Mean of the softmax over `samples` sampled networks (each layer's weights, then its bias, drawn in turn)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    model.eval()
    total = torch.zeros(len(x), model.layers[-1].bias_mu.numel(), device=x.device)
    sigmas = [layer.sigmas() for layer in model.layers]  # the same for every draw
    for _ in range(samples):
        draws = [layer.sample_weights(sigma) for layer, sigma in zip(model.layers, sigmas)]
        total += torch.softmax(network(x, [w for w, _ in draws], [b for _, b in draws]), dim=1)
    return total / samples


def _dropout_shapes(model: MLP, x: Tensor) -> list[tuple[float, tuple[int, ...]]]:
    """The rate and shape of each mask one MC dropout pass on x draws, in the order it draws them."""
    linears, rates, input_rate = mlp_layers(model)
    shapes = [(input_rate, tuple(x.shape))] if input_rate else []
    return shapes + [(rate, (len(x), layer.out_features)) for layer, rate in zip(linears, rates) if rate]


def dropout_noise_bytes(model: MLP, x: Tensor, samples: int) -> int:
    """Bytes `dropout_noise` draws for `samples` passes on x."""
    return samples * x.element_size() * sum(math.prod(shape) for _, shape in _dropout_shapes(model, x))


def dropout_noise(model: MLP, x: Tensor, samples: int) -> Iterator[list[Tensor]]:
    """Each MC dropout pass's multipliers (0 or 1 / (1 - p)), drawn one pass at a time from the global generator as
    `F.dropout` draws them on the CPU: per pass the input's, where it has dropout, then each masked hidden layer's,
    each laid out row by row."""
    shapes = _dropout_shapes(model, x)
    for _ in range(samples):
        yield [torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(1 - rate).div_(1 - rate)
               for rate, shape in shapes]


def _dropped(h: Tensor, rate: float, masks: Iterator[Tensor] | None) -> Tensor:
    """h with dropout at rate: the pass's next mask where it has them, else `F.dropout`'s own draw. A mask multiplies
    by position, row by row as the network's own forward draws it, whatever layout a sparse product left h in: a
    product's speed never decides which units a pass drops."""
    return F.dropout(h, rate, True) if masks is None else h * next(masks)


@torch.no_grad()
def mc_dropout_probabilities(model: MLP, x: Tensor, samples: int, noise: Iterable[list[Tensor]] | None = None,
                             first: Tensor | None = None) -> Tensor:
    """Mean softmax of `samples` passes with dropout on: the first product is shared where no dropout precedes it
    (computed here unless given: `first_activation`). On the CPU each pass's masks come from `noise` (drawn now by
    `dropout_noise` where none is given)."""
    model.eval()
    linears, rates, input_rate = mlp_layers(model)
    if input_rate and first is not None:
        raise ValueError("a network with dropout on its input shares no first layer between its passes")
    weights, biases = [layer.weight for layer in linears], [layer.bias for layer in linears]
    if first is None and not input_rate:
        first = first_activation(model, x)
    if x.device.type != "cpu":  # F.dropout's fused kernel draws its masks otherwise
        noise = None
    elif noise is None:
        noise = dropout_noise(model, x, samples)
    passes = []
    for masks in (iter(m) for m in noise) if noise is not None else [None] * samples:
        h = torch.relu(linear(_dropped(x, input_rate, masks), weights[0], biases[0])) if first is None else first
        for weight, bias, rate, (_, activation) in zip(weights[1:], biases[1:], rates, relu_between(weights[1:])):
            h = activation(linear(_dropped(h, rate, masks) if rate else h, weight, bias))
        passes.append(torch.softmax(h, dim=1))
    return torch.stack(passes).mean(0)


def has_mc(model: nn.Module) -> bool:
    """Whether a model has a stochastic predictive distribution: BBB's posterior, or dropout layers."""
    return isinstance(model, BayesianMLP) or any(isinstance(m, nn.Dropout) for m in model.modules())


def mc_probabilities(model: nn.Module, x: Tensor, samples: int, noise: Iterable[list[Tensor]] | None = None,
                     first: Tensor | None = None) -> Tensor:
    """The Monte Carlo predictive: BBB's posterior samples, or MC dropout (its masks from noise, its first layer's
    output from first, where given)."""
    if isinstance(model, BayesianMLP):
        return ensemble_probabilities(model, x, samples)
    return mc_dropout_probabilities(model, x, samples, noise, first)
