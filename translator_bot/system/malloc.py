"""glibc's allocator, tuned for the bot's process: at most two arenas, and fixed mmap and trim thresholds.

Arenas: at most two, where glibc would allow 8 per core.

glibc gives a thread that finds the allocator busy an arena of its own (up to 8 x cores of them), and
memory freed into one arena is not reused by another. The bot's threads (a decoder per remote track,
the engines' loader, the transcript writer, asyncio's executor) allocate little, but each of them
keeps an arena of its own warm: in a webinar-sized room that is ~8 MiB of peak RSS for nothing. The
threads hold the GIL for most of their work, so two arenas cost no measurable contention. An operator's
own `MALLOC_ARENA_MAX` wins (glibc read it at start-up); elsewhere than glibc this does nothing.

The mmap threshold: glibc serves blocks of 128 KiB and more from mappings of their own, returned to
the system when freed, but each time such a block is freed it raises the threshold to that block's
size (up to 32 MiB) and its trim threshold to twice that. Loading numpy, FFmpeg and OpenSSL frees
large blocks, so by the time the bot runs, even its largest buffers come from the heap, where what is
freed mostly stays resident. Fixed, larger buffers keep mappings of their own whatever is freed.

The fixed value must stay above the one large block the bot allocates per packet: asyncio reads every
datagram (each ICE, DTLS and RTP packet aioice receives) into a fresh 256 KiB buffer and then shrinks
it to the packet. Below that size each packet costs an mmap, an mremap and an munmap, and in a process
with a dozen threads each munmap also interrupts the other cores to flush their TLBs: at 64 KiB that
was ~5 % of the bot's CPU samples in a two-party meeting. So the threshold is 512 KiB, and the trim
threshold twice that (glibc's own ratio): below it, a buffer freed at the heap's top stays there for
the next packet instead of the heap shrinking and growing by a brk call each time.
(`tests/unit/test_system_malloc.py` checks both on a real asyncio datagram endpoint.)
`MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)

BOT_ARENAS = 2
# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Above asyncio's 256 KiB datagram read buffer (see the module doc).
BOT_MMAP_THRESHOLD = 512 * 1024
BOT_TRIM_THRESHOLD = 2 * BOT_MMAP_THRESHOLD


def tune_malloc() -> None:
    """What the bot's process sets before it starts threads: the arena cap and the two thresholds."""
    limit_malloc_arenas()
    fix_mmap_threshold()


def limit_malloc_arenas(arenas: int = BOT_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; True when the cap was set here."""
    return _set("MALLOC_ARENA_MAX", _M_ARENA_MAX, arenas)


def fix_mmap_threshold(size: int = BOT_MMAP_THRESHOLD, trim: int = BOT_TRIM_THRESHOLD) -> bool:
    """Serve blocks of `size` bytes and more from their own mappings, from now on and whatever is
    freed later (glibc no longer moves the threshold), and keep up to `trim` bytes free at the heap's
    top (the next such block comes from there); True when the mmap threshold was set here."""
    fixed = _set("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, size)
    _set("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, trim)
    return fixed


def _set(variable: str, parameter: int, value: int) -> bool:
    if variable in os.environ:
        return False  # the operator's choice, already applied by glibc
    mallopt = _mallopt()
    if mallopt is None:
        return False
    if mallopt(parameter, value) != 1:
        log.debug("mallopt(%d, %d) was refused", parameter, value)
        return False
    return True


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return cast(Callable[[int, int], int], mallopt)
