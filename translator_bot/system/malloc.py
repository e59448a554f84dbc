"""glibc's allocator, tuned for the bot's process: at most two arenas, fixed mmap and trim thresholds,
and the heap's free pages handed back every 2 s.

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
large blocks, so by the time the bot runs, even its largest buffers (a lane's input history) come
from the heap. Fixed, they keep mappings of their own whatever is freed.

The fixed value must stay above the one large block the bot allocates per packet: asyncio reads every
datagram (each ICE, DTLS and RTP packet aioice receives) and every TCP read into a fresh 256 KiB
buffer, then shrinks it to what came. Below that size each packet costs an mmap, an mremap and an
munmap, and in a process with a dozen threads each munmap also interrupts the other cores to flush
their TLBs: at 64 KiB that was ~5 % of the bot's CPU samples in a two-party meeting. So the threshold
is 320 KiB, and the trim threshold twice that (glibc's own ratio): below it, a buffer freed at the
heap's top stays there for the next packet instead of the heap shrinking and growing by a brk call
each time. (`tests/unit/test_system_malloc.py` checks both on a real asyncio datagram endpoint.)
`MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` win.

Read buffers carved from the heap leave free holes between longer-lived blocks, and glibc returns only
the heap's top to the system: the holes stay resident (~1.5 MiB more heap after 20 s of a two-party
meeting than with the buffers mapped). So the `join` process hands the heap's free pages back every
2 s (`keep_heap_trimmed`: glibc's `malloc_trim`, ~0.3 ms here), which takes the heap back to what it
was with mapped buffers; every 10 s, the holes of the seconds between left the peak ~0.8 MiB higher.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger(__name__)

BOT_ARENAS = 2
# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Above asyncio's 256 KiB datagram read buffer (see the module doc).
BOT_MMAP_THRESHOLD = 320 * 1024
BOT_TRIM_THRESHOLD = 2 * BOT_MMAP_THRESHOLD
HEAP_TRIM_PERIOD_S = 2.0


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


def trim_heap() -> bool:
    """Hand the free pages of glibc's heaps back to the system (not only the top); True when some
    were. False elsewhere than glibc."""
    malloc_trim = _libc_function("malloc_trim", ctypes.c_size_t)
    return malloc_trim is not None and bool(malloc_trim(0))


async def keep_heap_trimmed(period_s: float = HEAP_TRIM_PERIOD_S) -> None:
    """Trim the heap every `period_s` until cancelled (the caller owns the task); returns at once
    elsewhere than glibc."""
    if _libc_function("malloc_trim", ctypes.c_size_t) is None:
        return
    while True:
        await asyncio.sleep(period_s)
        trim_heap()


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
    return cast("Callable[[int, int], int] | None", _libc_function("mallopt", ctypes.c_int, ctypes.c_int))


@functools.cache
def _libc_function(name: str, *argtypes: Any) -> Any:
    """The C library's `name` taking `argtypes` and returning an int, set up once; None where it has
    none (musl has neither mallopt nor malloc_trim)."""
    libc = _libc()
    function = getattr(libc, name, None) if libc is not None else None
    if function is not None:
        function.argtypes = list(argtypes)
        function.restype = ctypes.c_int
    return function


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """Looked up once: `find_library` runs `ldconfig -p` in a subprocess."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return ctypes.CDLL(library)
    except OSError:
        return None
