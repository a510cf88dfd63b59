"""The BBB sampling kernel in C (`bbb_sample.c`), compiled on first use for this machine and called through ctypes.

It runs on CPU float32 tensors, vectorised and on PyTorch's own OpenMP threads. Where no C
compiler works (or BAYESPRUNE_NATIVE=0), `kernel()` is None and training uses the PyTorch path,
whose noise comes from torch.randn instead of the kernel's counter-based generator.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from bayesprune.host import cpu_flags

SOURCE = Path(__file__).with_name("bbb_sample.c")
COMPILE_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC"]
# Linked without -ffast-math, so the library does not switch the whole process to flush-to-zero.
LINK_FLAGS = ["-shared", "-fopenmp", "-lmvec", "-lm"]
KEY_RANGE = 2**62

_P, _I64, _I32, _U64, _F32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_uint64, ctypes.c_float


def cache_dir() -> Path:
    """Where compiled kernels live: $BAYESPRUNE_CACHE/native or ~/.cache/bayesprune/native."""
    root = os.environ.get("BAYESPRUNE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "bayesprune") / "native"


def _build(compiler: str) -> Path:
    """Compile the kernel for this CPU (once per source, compiler and CPU) and return the library's path."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    digest = hashlib.sha256("\0".join([SOURCE.read_text(), *COMPILE_FLAGS, *LINK_FLAGS, version, cpu_flags()]).encode())
    library = cache_dir() / f"bbb_sample-{digest.hexdigest()[:16]}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        obj, built = Path(scratch) / "bbb_sample.o", Path(scratch) / library.name
        for command in ([compiler, *COMPILE_FLAGS, "-c", str(SOURCE), "-o", str(obj)],
                        [compiler, str(obj), *LINK_FLAGS, "-o", str(built)]):
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
        built.replace(library)  # atomic: concurrent builders each leave a complete library
    return library


@cache
def kernel() -> ctypes.CDLL | None:
    """The compiled kernel, or None (with one warning saying why) where it cannot be built or is switched off."""
    if os.environ.get("BAYESPRUNE_NATIVE", "1") == "0":
        return None
    compiler = shutil.which(os.environ.get("CC", "cc"))
    try:
        if compiler is None:
            raise RuntimeError("no C compiler found (set CC or install gcc)")
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(f"BBB kernel unavailable, training BBB on the slower PyTorch path: {error}", stacklevel=2)
        return None
    lib.bbb_normals.argtypes = [_I64, _I32, _U64, _P]
    lib.bbb_quantiles.argtypes = [_I64, _P, _P]
    lib.bbb_sample_forward.restype = ctypes.c_double
    lib.bbb_sample_forward.argtypes = [_I64, _I32, _P, _P, _P, _U64, _P, _P, _P, _P, _F32, _F32, _F32, _I32, _I32]
    lib.bbb_sample_backward.argtypes = [_I64, _I32, _P, _P, _P, _P, _P, _P, _F32, _P, _P]
    return lib


def sampler_name(device: str) -> str:
    """How BBB trains on this device: through the C kernel (its noise generator) or the PyTorch path (torch.randn)."""
    if device.startswith("cpu") and kernel() is not None:
        return "C kernel bbb_sample.c (splitmix64 + erfinv noise)"
    return "PyTorch (torch.randn noise)"


def runs_on(tensor: Tensor) -> bool:
    """Whether the kernel serves this tensor (CPU float32, kernel built)."""
    return tensor.device.type == "cpu" and tensor.dtype == torch.float32 and kernel() is not None


def normals(samples: int, shape: tuple[int, ...], key: int) -> Tensor:
    """Standard normal noise (samples, *shape) from stream `key`: what `sample_forward` draws for that key."""
    out = torch.empty((samples, *shape), dtype=torch.float32)
    kernel().bbb_normals(math.prod(shape), samples, key, out.data_ptr())
    return out


def quantiles(bits: Tensor) -> Tensor:
    """The normal quantiles the generator gives 24-bit values (int32 tensor): its whole output set."""
    bits = bits.to(torch.int32).contiguous()
    out = torch.empty(bits.shape, dtype=torch.float32)
    kernel().bbb_quantiles(bits.numel(), bits.data_ptr(), out.data_ptr())
    return out


def sample_forward(
    mu: Tensor, rho: Tensor, samples: int, key: int, prior_terms: tuple[float, float, float, bool], entropy_gradient: bool,
    mask: Tensor | None = None,
) -> tuple[Tensor, float, tuple[Tensor, Tensor, Tensor]]:
    """S weight samples (noise times `mask` where given: a pruned weight is never sampled), their summed
    complexity cost (less its constants) and what the backward pass needs besides the samples and mu."""
    mu, rho = mu.detach().contiguous(), rho.detach().contiguous()
    mask = None if mask is None else mask.detach().to(torch.float32).contiguous()
    n = mu.numel()
    weights = torch.empty((samples, *mu.shape))
    cost_mu, cost_rho, slope_rho = torch.empty(n), torch.empty(n), torch.empty(n)
    k1, k2, gap0, mixture = prior_terms
    total = kernel().bbb_sample_forward(
        n, samples, mu.data_ptr(), rho.data_ptr(), None if mask is None else mask.data_ptr(), key, weights.data_ptr(),
        cost_mu.data_ptr(), cost_rho.data_ptr(), slope_rho.data_ptr(), k1, k2, gap0, int(mixture), int(entropy_gradient),
    )
    return weights, total, (cost_mu, cost_rho, slope_rho)


def sample_backward(grad_weights: Tensor, grad_cost: float, weights: Tensor, mu: Tensor,
                    saved: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Gradients of mu and rho (flat) from the samples' gradient and the cost's, the noise read back from the
    samples as (w - mu) / sigma. They are written over the cost's gradients (no fresh memory to fault in), so the
    saved tensors serve one backward pass."""
    cost_mu, cost_rho, slope_rho = saved
    grad_weights, mu = grad_weights.contiguous(), mu.detach().contiguous()
    kernel().bbb_sample_backward(
        cost_mu.numel(), weights.shape[0], grad_weights.data_ptr(), weights.data_ptr(), mu.data_ptr(), cost_mu.data_ptr(),
        cost_rho.data_ptr(), slope_rho.data_ptr(), grad_cost, cost_mu.data_ptr(), cost_rho.data_ptr(),
    )
    return cost_mu, cost_rho
