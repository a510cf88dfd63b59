"""`bayesprune bench`: what one training epoch of each model costs on this machine.

Every model trains on the same real minibatches (batch 100; the 784-500-500-10 network, or Blundell
et al.'s 784-1200-1200-10 for the models named -2x1200) with the same optimizer as `train`. After warm-up, each is
timed over a fixed number of steps, several times, the models taking turns repeat by repeat so that a machine
whose speed drifts slows them all alike; the median step time is extrapolated to an epoch of 600 steps (said
in the output), and each ratio is the median of the ratios within a repeat, with their range.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bayesprune.config import RunConfig
from bayesprune.data.datasets import load_split
from bayesprune.host import resolve_device
from bayesprune.model.activation import relu_between
from bayesprune.model.bayes import HALF_LOG_2PI
from bayesprune.model.models import build_model, build_prior, layer_sizes
from bayesprune.performance.compression import crossover_sparsity
from bayesprune.pipeline.manifest import device_description, library_versions
from bayesprune.training.heap import keep_freed_memory
from bayesprune.training.train import build_optimizer, step_function

STEPS_PER_EPOCH = 600
BLUNDELL_HIDDEN = (1200, 1200)  # Blundell et al.'s Table 2 network, 784-1200-1200-10
BLITZ_HINT = "pip install -e .[bench]  (blitz-bayesian-pytorch)"


@dataclass
class Timing:
    """Cost of one training step of a model: the mean of each timed repeat."""

    name: str
    repeat_seconds: list[float]
    batch_size: int

    @property
    def step_seconds(self) -> float:
        """Median over repeats of the seconds per step."""
        return statistics.median(self.repeat_seconds)

    @property
    def epoch_seconds(self) -> float:
        """Extrapolated seconds per epoch of STEPS_PER_EPOCH steps."""
        return self.step_seconds * STEPS_PER_EPOCH

    @property
    def samples_per_second(self) -> float:
        """Training examples per second."""
        return self.batch_size / self.step_seconds


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[int], None], steps: int, repeats: int, warmup: int, device: torch.device) -> float:
    """Median over repeats of the mean seconds per step, after warm-up."""
    return statistics.median(time_in_turns({"": step}, steps, repeats, warmup, device)[""])


def time_in_turns(
    named_steps: dict[str, Callable[[int], None]], steps: int, repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Per step function, the mean seconds per step of each repeat, after warm-up; in every repeat each
    function runs its steps in turn, so that a drift in the machine's speed reaches all of them alike."""
    for step in named_steps.values():
        for index in range(warmup):
            step(index)
    _synchronize(device)
    means: dict[str, list[float]] = {name: [] for name in named_steps}
    for _ in range(repeats):
        for name, step in named_steps.items():
            started = time.perf_counter()
            for index in range(steps):
                step(index)
            _synchronize(device)
            means[name].append((time.perf_counter() - started) / steps)
    return means


def minibatch(i: int, batches: int, size: int) -> slice:
    """Rows of step i's minibatch, cycling through the first `batches` minibatches of the data."""
    return slice((i % batches) * size, (i % batches + 1) * size)


def _project_step(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor, use_kernel: bool = True,
                  graphed: bool = True) -> Callable[[int], None]:
    """One training step of this project's model for cfg on batch i of a fixed permutation, as training
    launches it (graphed: a CUDA graph where graphs are enabled)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(x.device).train()
    if cfg.bayesian:
        model.use_kernel = use_kernel
    prior = build_prior(cfg) if cfg.bayesian else None
    optimizer = build_optimizer(cfg, model)
    kl_weight = torch.tensor(1.0 / STEPS_PER_EPOCH, device=x.device)
    batches = len(x) // cfg.batch_size
    first = minibatch(0, batches, cfg.batch_size)
    launch = step_function(cfg, model, prior, optimizer, x[first], y[first], kl_weight, graphed)

    def step(i: int) -> None:
        rows = minibatch(i, batches, cfg.batch_size)
        launch(x[rows], y[rows], kl_weight)

    return step


def _study_step(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    """BBB as the study's notebooks implement it: one pass per sample, the noise drawn on the host and
    copied to the device, the mixture prior evaluated on the host as log(pi p1 + (1 - pi) p2), log q detached."""
    device = x.device
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device).train()
    optimizer = build_optimizer(cfg, model)
    normal = torch.distributions.Normal(0.0, 1.0)
    wide = torch.distributions.Normal(0.0, math.exp(cfg.prior_log_sigma1))
    narrow = torch.distributions.Normal(0.0, math.exp(cfg.prior_log_sigma2))
    batches = len(x) // cfg.batch_size

    def sample_with_cost(mu: torch.Tensor, rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = torch.log1p(torch.exp(rho))
        w = mu + sigma * normal.sample(rho.shape).to(device)
        log_q = (-HALF_LOG_2PI - torch.log(sigma) - (w - mu) ** 2 / (2 * sigma**2)).sum().detach()
        host = w.cpu()
        density = cfg.prior_pi * wide.log_prob(host).exp().to(device) + (1 - cfg.prior_pi) * narrow.log_prob(host).exp().to(device)
        return w, log_q - torch.log(density).sum()

    def step(i: int) -> None:
        rows = minibatch(i, batches, cfg.batch_size)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        for _ in range(cfg.train_samples):
            hidden = x[rows]
            for layer, activation in relu_between(model.layers):
                weight, weight_cost = sample_with_cost(layer.weight_mu, layer.weight_rho)
                bias, bias_cost = sample_with_cost(layer.bias_mu, layer.bias_rho)
                hidden = activation(torch.nn.functional.linear(hidden, weight, bias))
                loss = loss + (weight_cost + bias_cost) / STEPS_PER_EPOCH
            loss = loss + torch.nn.functional.cross_entropy(hidden, y[rows], reduction="sum")
        (loss / cfg.train_samples / cfg.batch_size).backward()
        optimizer.step()

    return step


def _blitz_step(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    """The same network, prior and 2 samples with blitz-bayesian-pytorch's BayesianLinear."""
    try:
        from blitz.modules import BayesianLinear
        from blitz.utils import variational_estimator
    except ImportError as error:
        raise ImportError(f"blitz-bayesian-pytorch is not installed: {BLITZ_HINT}") from error

    @variational_estimator
    class BlitzMLP(torch.nn.Module):
        """784-500-500-10 ReLU MLP of blitz BayesianLinear layers."""

        def __init__(self) -> None:
            super().__init__()
            sizes = [784, *cfg.hidden, 10]
            prior = {"prior_pi": cfg.prior_pi, "prior_sigma_1": math.exp(cfg.prior_log_sigma1),
                     "prior_sigma_2": math.exp(cfg.prior_log_sigma2)}
            self.layers = torch.nn.ModuleList(BayesianLinear(a, b, **prior) for a, b in zip(sizes[:-1], sizes[1:]))

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            """Logits from one weight sample."""
            for layer, activation in relu_between(self.layers):
                h = activation(layer(h))
            return h

    torch.manual_seed(cfg.seed)
    model = BlitzMLP().to(x.device)
    optimizer = build_optimizer(cfg, model)
    criterion = torch.nn.CrossEntropyLoss(reduction="sum")
    batches = len(x) // cfg.batch_size

    def step(i: int) -> None:
        rows = minibatch(i, batches, cfg.batch_size)
        optimizer.zero_grad(set_to_none=True)
        loss = model.sample_elbo(x[rows], y[rows], criterion, sample_nbr=cfg.train_samples,
                                 complexity_cost_weight=1.0 / STEPS_PER_EPOCH)
        (loss / cfg.batch_size).backward()
        optimizer.step()

    return step


@dataclass(frozen=True)
class BenchModel:
    """A benchmarked model: what it is, and how to build its training step on (device, images, labels)."""

    what: str
    build: Callable[[str, torch.Tensor, torch.Tensor], Callable[[int], None]]


def _ours(method: str, **options: Any) -> Callable[[str, torch.Tensor, torch.Tensor], Callable[[int], None]]:
    """Builder of this project's step for a method; options split into RunConfig fields and step switches."""
    switches = {k: options.pop(k) for k in ("use_kernel", "graphed") if k in options}
    return lambda device, x, y: _project_step(RunConfig(method=method, device=device, **options), x, y, **switches)


MODELS = {
    "sgd": BenchModel("the SGD MLP (Adam, as every model here)", _ours("sgd")),
    "sgd-eager": BenchModel("the same step launched op by op (no CUDA graph; on CPU the same as sgd)",
                            _ours("sgd", graphed=False)),
    "dropout0.5": BenchModel("the MLP with dropout 0.5", _ours("dropout0.5")),
    "bbb": BenchModel("this project's BBB step, 2 samples (the C kernel on CPU, one CUDA graph on GPU)", _ours("bbb")),
    "bbb-eager": BenchModel("the same step launched op by op (no CUDA graph; on CPU the same as bbb)",
                            _ours("bbb", graphed=False)),
    "bbb-torch": BenchModel("the same step without the C kernel (PyTorch operations)", _ours("bbb", use_kernel=False)),
    "bbb-plain": BenchModel("the same estimator through plain autograd, one forward pass per sample",
                            _ours("bbb", fused_elbo=False)),
    "bbb-study": BenchModel("BBB as the study implements it (noise and prior through the host)",
                            lambda device, x, y: _study_step(RunConfig(method="bbb", device=device), x, y)),
    "blitz": BenchModel("blitz-bayesian-pytorch's BayesianLinear, same network, prior and 2 samples",
                        lambda device, x, y: _blitz_step(RunConfig(method="bbb", device=device), x, y)),
    "sgd-2x1200": BenchModel("the SGD MLP at Blundell et al.'s size, 784-1200-1200-10",
                             _ours("sgd", hidden=BLUNDELL_HIDDEN)),
    "bbb-2x1200": BenchModel("this project's BBB step at Blundell et al.'s size, 784-1200-1200-10",
                             _ours("bbb", hidden=BLUNDELL_HIDDEN)),
}
RATIOS = {  # reported ratio -> (numerator, denominator)
    **{f"{name}/sgd": (name, "sgd") for name in ("bbb", "bbb-torch", "bbb-plain", "bbb-study", "blitz", "dropout0.5")},
    "bbb-eager/sgd-eager": ("bbb-eager", "sgd-eager"),
    "bbb-study/sgd-eager": ("bbb-study", "sgd-eager"),  # like with like: both launched op by op
    "blitz/bbb": ("blitz", "bbb"),
    "bbb-2x1200/sgd-2x1200": ("bbb-2x1200", "sgd-2x1200"),
}


PROFILE_TOP = 12  # operations a report keeps per profiled model
PROFILED = ("sgd", "bbb", "sgd-2x1200", "bbb-2x1200")  # each network's SGD and BBB step, op by op
# Where a step's time goes, by kind of operation (self time of the profiled ops; first match wins).
STEP_PARTS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "sampling kernel": ("KernelSampleWithCost", "SampleWithCost"),
    "optimizer": ("aten::_fused_adam_", "Optimizer.", "aten::_foreach"),
}


def step_part(op: str) -> str:
    """The STEP_PARTS kind an operation belongs to, else 'everything else'."""
    for part, prefixes in STEP_PARTS.items():
        if any(op.startswith(prefix) for prefix in prefixes):
            return part
    return "everything else"


def profile_step(step: Callable[[int], None], device: torch.device, steps: int = 5) -> list[dict[str, Any]]:
    """Every operation of a few training steps, the most expensive first (self time per step, ms)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for index in range(steps):
            step(index)
        _synchronize(device)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "calls_per_step": e.count / steps, "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps}
            for e in events]


def step_parts(ops: list[dict[str, Any]]) -> dict[str, float]:
    """Milliseconds per step in each STEP_PARTS kind and in everything else (all of a profile's ops)."""
    parts = dict.fromkeys([*STEP_PARTS, "everything else"], 0.0)
    for op in ops:
        parts[step_part(op["op"])] += op["self_ms_per_step"]
    return parts


def noise_ms(device: torch.device, samples: int = 2) -> dict[str, float]:
    """Milliseconds to draw one step's weight noise (2 samples of the 784-500-500-10 network) by each generator."""
    from bayesprune import native

    sizes = layer_sizes(RunConfig())
    count = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    timed = {"torch.randn": lambda _: torch.randn(samples, count, device=device)}
    if device.type == "cpu" and native.kernel() is not None:
        timed["kernel"] = lambda _: native.normals(samples, (count,), 1)
    return {name: time_steps(draw, steps=20, repeats=5, warmup=3, device=device) * 1e3 for name, draw in timed.items()}


def matmul_gflops(device: torch.device, size: int = 1024, repeats: int = 10) -> float:
    """Dense float32 matrix-multiply throughput of the device (GFLOP/s)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    seconds = time_steps(lambda _: torch.mm(a, b), steps=repeats, repeats=3, warmup=2, device=device)
    return 2 * size**3 / seconds / 1e9


def sgd_epoch_gflop(cfg: RunConfig) -> float:
    """Matrix-multiply work of one SGD epoch (forward, and backward at twice that), in GFLOP."""
    sizes = [784, *cfg.hidden, 10]
    per_example = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * per_example * cfg.batch_size * STEPS_PER_EPOCH / 1e9


# The profiler's own log lines (profiler_start, gpuGetDeviceCount on a CPU machine) carry nothing for a reader.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

SPARSE_NETWORKS = {"784-300-100-10": (784, 300, 100, 10), "784-500-500-10": (784, 500, 500, 10)}
SPARSE_BATCHES = (1, 1000)


def sparse_crossover(repeats: int) -> dict[str, dict[str, float]]:
    """Per network and batch size: the lowest sparsity at which CSR inference beats dense on this CPU."""
    return {name: {str(batch): crossover_sparsity(sizes, batch, repeats=repeats) for batch in SPARSE_BATCHES}
            for name, sizes in SPARSE_NETWORKS.items()}


REPEAT_TOLERANCE = 0.10  # a model's repeats that differ by more than this share of the fastest are flagged
BUSY_LOAD = 0.5  # load average per core above which the machine was not idle when the bench began


def wait_until_idle(cores: int, limit_s: float = 300.0, poll_s: float = 5.0) -> float:
    """Wait (at most limit_s) until the 1-minute load is below what `bench_flags` calls busy, so that a bench run
    right after another does not time its predecessor's load; the load when it stops waiting."""
    waited = 0.0
    while (load := os.getloadavg()[0]) > BUSY_LOAD * cores and waited < limit_s:
        time.sleep(poll_s)
        waited += poll_s
    return load


def bench_flags(seconds: dict[str, list[float]], load: float, cores: int,
                peaks: tuple[float, float] | None = None) -> list[str]:
    """What makes a bench report untrustworthy, in words: a model whose repeats disagree (the slowest more than
    REPEAT_TOLERANCE above the fastest), a machine that was busy when timing began, and a machine whose own speed
    (dense matmul GFLOP/s before and after the timing, `peaks`) moved by more than REPEAT_TOLERANCE: then the
    spread is the machine's (a shared host), which no process can choose."""
    flags = [f"{name}'s repeats disagree: {1e3 * min(times):.2f} to {1e3 * max(times):.2f} ms a step "
             f"({max(times) / min(times) - 1:.0%} apart, more than {REPEAT_TOLERANCE:.0%}): time it again on an idle "
             "machine" for name, times in seconds.items() if min(times) > 0 and max(times) > (1 + REPEAT_TOLERANCE) * min(times)]
    if peaks and min(peaks) > 0 and max(peaks) > (1 + REPEAT_TOLERANCE) * min(peaks):
        flags.append(f"the machine's own speed moved during the bench (dense matmul {peaks[0]:.0f} GFLOP/s before, "
                     f"{peaks[1]:.0f} after): every model's step moved with it")
    if load > BUSY_LOAD * cores:
        flags.append(f"the machine was busy when the bench began (load {load:.1f} on {cores} cores): other processes "
                     "share the cores, and every step here is slower than on an idle machine")
    return flags


def run_bench(
    models: list[str], steps: int = 50, repeats: int = 5, warmup: int = 5, device: str = "auto",
    data_root: Path | None = None,
) -> dict[str, Any]:
    """Time every named model (see MODELS) and derive the ratios."""
    unknown = [name for name in models if name not in MODELS]
    if unknown:
        raise ValueError(f"unknown bench model(s) {', '.join(unknown)}; valid choices: {', '.join(MODELS)}")
    target = resolve_device(device)
    load = os.getloadavg()[0]
    keep_freed_memory()
    x, y = load_split("mnist", True, data_root, target)
    named_steps = {name: MODELS[name].build(str(target), x, y) for name in models}
    before = matmul_gflops(target)
    seconds = time_in_turns(named_steps, steps, repeats, warmup, target)
    timings = {name: Timing(name, seconds[name], RunConfig().batch_size) for name in models}
    profiles = {name: profile_step(step, target) for name, step in named_steps.items() if name in PROFILED}
    peak = matmul_gflops(target)
    report: dict[str, Any] = {
        "machine": device_description(str(target)),
        "platform": platform.platform(),
        "libraries": {k: v for k, v in library_versions().items() if k in ("torch", "bayesprune")},
        "method": f"median over {repeats} repeats of {steps} steps after {warmup} warm-up steps, the models in "
                  f"turn within each repeat; epoch = {STEPS_PER_EPOCH} steps, extrapolated; ratios: median and range "
                  f"of the ratios within a repeat",
        "models": {t.name: {"step_ms": t.step_seconds * 1e3, "epoch_seconds": t.epoch_seconds,
                            "samples_per_second": t.samples_per_second, "what": MODELS[t.name].what}
                   for t in timings.values()},
        "matmul_gflops": peak,
        "matmul_gflops_before": before,
        "noise_ms": noise_ms(target),
        "profile": {name: ops[:PROFILE_TOP] for name, ops in profiles.items()},
        "step_parts": {name: step_parts(ops) for name, ops in profiles.items()},
    }
    if target.type == "cpu":
        report["sparse_crossover"] = sparse_crossover(max(3, steps // 5))
    if "sgd" in timings:
        achieved = sgd_epoch_gflop(RunConfig()) / timings["sgd"].epoch_seconds
        report["sgd_matmul_share_of_peak"] = achieved / peak
    ranges = {}
    for ratio, (top, bottom) in RATIOS.items():
        if top in timings and bottom in timings:
            within = [a / b for a, b in zip(timings[top].repeat_seconds, timings[bottom].repeat_seconds)]
            report[ratio] = statistics.median(within)
            ranges[ratio] = [min(within), max(within)]
    report["ratio_ranges"] = ranges
    report["flags"] = bench_flags(seconds, load, os.cpu_count() or 1, (before, peak))
    return report


def format_report(report: dict[str, Any]) -> str:
    """The bench report as a plain-text table."""
    lines = [f"machine: {report['machine']}", f"timing: {report['method']}", "",
             f"{'model':12s} {'ms/step':>9s} {'s/epoch':>9s} {'samples/s':>10s}"]
    for name, row in report["models"].items():
        lines.append(f"{name:12s} {row['step_ms']:9.2f} {row['epoch_seconds']:9.2f} {row['samples_per_second']:10.0f}")
    lines.append("")
    lines += [f"{name:12s} {row['what']}" for name, row in report["models"].items() if "what" in row]
    lines.append("")
    lines.append(f"dense matmul: {report['matmul_gflops']:.1f} GFLOP/s"
                 + (f" ({report['matmul_gflops_before']:.1f} before the timing)" if "matmul_gflops_before" in report else ""))
    if "sgd_matmul_share_of_peak" in report:
        lines.append(f"SGD epoch reaches {report['sgd_matmul_share_of_peak']:.0%} of it")
    noise = report.get("noise_ms", {})
    lines += [f"one step's weight noise by {name}: {ms:.2f} ms" for name, ms in noise.items()]
    for key, value in report.items():
        if "/" in key:
            low, high = report.get("ratio_ranges", {}).get(key, (value, value))
            lines.append(f"{key}: {value:.2f}x (repeats {low:.2f}-{high:.2f}x)")
    for network, batches in report.get("sparse_crossover", {}).items():
        for batch, sparsity in batches.items():
            found = f"from {sparsity:.1%} of the weights pruned" if sparsity == sparsity else "at no sparsity tried"
            lines.append(f"CSR inference beats dense {found} ({network}, batch {batch})")
    for name, parts in report.get("step_parts", {}).items():
        lines.append(f"one {name} step by part (ms): " + ", ".join(f"{part} {ms:.2f}" for part, ms in parts.items()))
    lines += [f"WARNING: {flag}" for flag in report.get("flags", [])]
    for name, rows in report["profile"].items():
        lines += ["", f"where one {name} step spends its time (self time, ms per step):"]
        lines += [f"  {r['op'][:44]:44s} {r['self_ms_per_step']:7.2f}  ({r['calls_per_step']:.0f} calls)" for r in rows]
    return "\n".join(lines)

