"""The training step as one CUDA graph: on a GPU a small MLP's step is bound by kernel launches, not
by arithmetic (a BBB step launches some 250 kernels), so it is captured once and replayed.

The graph replays the same operations on the same tensors, so it changes how the step is launched,
not what it computes. Set BAYESPRUNE_CUDA_GRAPH=0 to launch every operation one by one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

GRAPH_ENV = "BAYESPRUNE_CUDA_GRAPH"
WARMUP_STEPS = 3

Step = Callable[[Tensor, Tensor, Tensor], Tensor]


def graphs_enabled(device: torch.device) -> bool:
    """Whether training steps on device are captured as CUDA graphs (CUDA, unless switched off)."""
    return device.type == "cuda" and os.environ.get(GRAPH_ENV, "1") != "0"


def step_launch(device: torch.device) -> str:
    """How training launches its step on device, for the manifest."""
    return "one CUDA graph per step" if graphs_enabled(device) else "operation by operation"


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Copies of the parameters and of the optimizer's per-parameter state."""
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "state": {p: {k: v.clone() if isinstance(v, Tensor) else v for k, v in optimizer.state[p].items()}
                  for p in model.parameters() if p in optimizer.state},
    }


def restore_in_place(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Put parameters and optimizer state back as `snapshot` found them, writing into the same tensors
    (a captured graph holds their addresses); state created since then is zeroed, as a fresh optimizer has it."""
    with torch.no_grad():
        for p, value in zip(model.parameters(), saved["params"]):
            p.copy_(value)
            p.grad = None
        for p in model.parameters():
            before = saved["state"].get(p, {})
            for key, value in optimizer.state.get(p, {}).items():
                if not isinstance(value, Tensor):
                    continue
                if key in before:
                    value.copy_(before[key])
                else:
                    value.zero_()


class GraphedStep:
    """`step(x, y, kl_weight)` captured for minibatches shaped like the example and replayed; other
    shapes (a short last minibatch) run op by op. The returned tensor is overwritten by the next call."""

    def __init__(self, step: Step, model: nn.Module, optimizer: torch.optim.Optimizer,
                 x: Tensor, y: Tensor, kl_weight: Tensor) -> None:
        self.step = step
        self.x, self.y, self.kl_weight = x.clone(), y.clone(), kl_weight.clone()
        saved = snapshot(model, optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up creates the optimizer state and autograd's buffers
            for _ in range(WARMUP_STEPS):
                step(self.x, self.y, self.kl_weight)
        torch.cuda.current_stream().wait_stream(side)
        restore_in_place(model, optimizer, saved)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = step(self.x, self.y, self.kl_weight)

    def __call__(self, x: Tensor, y: Tensor, kl_weight: Tensor) -> Tensor:
        """One optimizer step on (x, y): a graph replay where the shapes match."""
        if x.shape != self.x.shape:
            return self.step(x, y, kl_weight)
        self.x.copy_(x)
        self.y.copy_(y)
        self.kl_weight.copy_(kl_weight)
        self.graph.replay()
        return self.out
