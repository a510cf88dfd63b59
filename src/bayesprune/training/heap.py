"""Keep the C heap from returning large freed blocks to the system between training steps."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for this setting
TRIM_THRESHOLD = 512 * 1024 * 1024


@cache
def keep_freed_memory() -> bool:
    """Ask glibc to serve tensors up to 32 MiB from its heap and keep freed memory; False where there is no glibc.

    Every training step allocates and frees the same few-megabyte tensors; by default glibc maps
    each afresh, and the kernel zeroes its pages on first touch, a page fault per 4 KiB every step.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
