"""Executing the project's parameterized notebooks through papermill."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import papermill
from jupyter_client.manager import KernelManager
from traitlets import default

from bayesprune.pipeline.profiles import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
KERNEL = "python3"


class LocalKernelManager(KernelManager):
    """A kernel reached over local IPC sockets: nothing listens on a TCP port, so ipykernel has no
    unencrypted-transport notice to print for every notebook. Each kernel's sockets get a path of their
    own, so kernels started side by side (a grid's parallel runs) never share one. A kernel that is shut
    down after its notebook has finished is not interrupted first, so it logs no KeyboardInterrupt."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"bayesprune-kernel-{uuid.uuid4().hex}")

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt the kernel, except on the way to a shutdown, where it is idle and the signal only logs."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


def execute_notebook(name: str, output: Path, parameters: dict) -> float:
    """Run notebooks/<name>.ipynb with papermill into output; return its wall time."""
    started = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(output), parameters=parameters,
        kernel_name=KERNEL, progress_bar=False, cwd=str(NOTEBOOKS), kernel_manager_class=LocalKernelManager,
        shutdown_kernel="immediate",  # the notebook has finished: a graceful shutdown only waits for torch's exit
    )
    return time.perf_counter() - started
