"""Where a grid's runs execute: in this process, in a pool of local processes, or as Ray tasks.

Every executor calls the same `attempt_run`, which writes a run atomically under its lock, so the
executors are interchangeable and a grid started by one can be resumed by another.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol

RAY_MISSING = "the Ray executor needs Ray, an optional extra: pip install -e '.[ray]'"
EXECUTOR_NAMES = ("local", "ray")


class MissingExtra(RuntimeError):
    """An optional dependency the chosen option needs is not installed."""


class Executor(Protocol):
    """Runs `task(item, *args)` for every item and yields the results as they come."""

    def map(self, task: Callable[..., Any], items: Sequence[Any], *args: Any) -> Iterator[Any]: ...


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu for gpu in listed.split(",") if gpu.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def _pin_worker(slots: Any, gpus: list[str], threads: int) -> None:
    """Give a pool worker its own GPU (round robin) and its share of the CPU threads."""
    import torch

    slot = slots.get()
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for the notebook kernels it starts
    torch.set_num_threads(threads)  # for itself, and for the thread count its manifests record
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]


class LocalExecutor:
    """One run at a time in this process, or `jobs` at a time in fresh local processes.

    With several jobs, worker k sees only GPU k mod (number of GPUs) and cores / jobs threads, so
    `--jobs 8` on an eight-GPU box trains one run per GPU.
    """

    def __init__(self, jobs: int = 1, gpus: list[str] | None = None) -> None:
        if not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
        self.jobs = jobs
        self.gpus = gpus

    def map(self, task: Callable[..., Any], items: Sequence[Any], *args: Any) -> Iterator[Any]:
        """Yield task(item, *args) for each item, in order for one job, as they finish for several."""
        if self.jobs == 1:
            for item in items:
                yield task(item, *args)
            return
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for slot in range(self.jobs):
            slots.put(slot)
        gpus = visible_gpus() if self.gpus is None else self.gpus
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_pin_worker,
                                 initargs=(slots, gpus, threads)) as pool:
            futures = [pool.submit(task, item, *args) for item in items]
            for future in as_completed(futures):
                yield future.result()


class RayExecutor:
    """Each run a Ray task: on a local cluster started here, or on the cluster at `address`."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float | None = None,
                 max_retries: int = 3) -> None:
        try:
            import ray
        except ImportError:
            raise MissingExtra(RAY_MISSING) from None
        if cpus_per_run <= 0 or (gpus_per_run is not None and gpus_per_run < 0):
            raise ValueError(f"cpus_per_run must be > 0 and gpus_per_run >= 0, got {cpus_per_run}, {gpus_per_run}")
        self.ray = ray
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.max_retries = max_retries

    def map(self, task: Callable[..., Any], items: Sequence[Any], *args: Any) -> Iterator[Any]:
        """Submit every item as a task (retried if its worker dies) and yield results as they finish."""
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}})
        try:
            gpus = self.gpus_per_run
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
            remote = ray.remote(task).options(num_cpus=self.cpus_per_run, num_gpus=gpus,
                                              max_retries=self.max_retries, retry_exceptions=False)
            shared = [ray.put(arg) for arg in args]
            pending = [remote.remote(item, *shared) for item in items]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            if started_here:
                ray.shutdown()


def default_jobs() -> int:
    """Runs at once by default: one per GPU where there are GPUs, else one per CPU core (at most 8)."""
    return len(visible_gpus()) or min(os.cpu_count() or 1, 8)


def make_executor(name: str = "local", jobs: int | None = None, address: str | None = None,
                  cpus_per_run: float = 1.0, gpus_per_run: float | None = None) -> Executor:
    """The executor called `name`, checked before anything runs."""
    if name not in EXECUTOR_NAMES:
        raise ValueError(f"unknown executor {name!r}; valid choices: {', '.join(EXECUTOR_NAMES)}")
    if name == "ray":
        return RayExecutor(address, cpus_per_run, gpus_per_run)
    if address is not None:
        raise ValueError("--address applies to the Ray executor only (add --executor ray)")
    return LocalExecutor(default_jobs() if jobs is None else jobs)
