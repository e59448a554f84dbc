"""The C allocator's arenas: at most two for the bot's process, where glibc would allow 8 per core.

glibc gives a thread that finds the allocator busy an arena of its own (up to 8 x cores of them), and
memory freed into one arena is not reused by another. The bot's threads (a decoder per remote track,
the engines' loader, the transcript writer, asyncio's executor) allocate little, but each of them
keeps an arena of its own warm: in a webinar-sized room that is ~8 MiB of peak RSS for nothing. The
threads hold the GIL for most of their work, so two arenas cost no measurable contention. An operator's
own `MALLOC_ARENA_MAX` wins (glibc read it at start-up); elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

BOT_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = BOT_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; True when the cap was set here."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # the operator's choice, already applied by glibc
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
        return False
    return True
