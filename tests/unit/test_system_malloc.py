"""The bot's process tunes glibc's allocator: two arenas however many threads, fixed mmap and trim
thresholds that keep per-packet buffers off their own mappings, and free heap pages handed back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Runs in a fresh interpreter: 8 threads, alive at the same time, each allocate through malloc, then count the
# arenas glibc reports (one <heap nr=...> element per arena in malloc_info's XML).
PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, re, sys, threading
    from translator_bot.system.malloc import limit_malloc_arenas
    if sys.argv[1] == "limit":
        assert limit_malloc_arenas()
    together = threading.Barrier(8)  # all alive at once: an exited thread's arena is reused
    def work():
        kept = [bytearray(200_000) for _ in range(4)]  # above pymalloc's sizes: glibc malloc
        together.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    fp = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(len(re.findall(r"<heap nr=", open(sys.argv[2]).read())))
    """
)


def run_probe(code: str, *args: str, unset: str) -> int:
    """Runs `code` in a fresh interpreter without the environment variable `unset` (glibc reads it at
    start-up); returns the number it prints."""
    env = {k: v for k, v in os.environ.items() if k != unset}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def arenas(tmp_path: Path, mode: str) -> int:
    return run_probe(PROBE, mode, str(tmp_path / f"{mode}.xml"), unset="MALLOC_ARENA_MAX")


def test_eight_threads_share_two_arenas(tmp_path: Path) -> None:
    unlimited = arenas(tmp_path, "free")
    assert unlimited > 2, f"control: glibc gave {unlimited} arenas to 8 threads; the probe shows nothing"
    assert arenas(tmp_path, "limit") <= 2


def test_the_operators_setting_wins(tmp_path: Path) -> None:
    from translator_bot.system.malloc import limit_malloc_arenas

    os.environ["MALLOC_ARENA_MAX"] = "4"
    try:
        assert not limit_malloc_arenas()
    finally:
        del os.environ["MALLOC_ARENA_MAX"]


# The probes' handle on glibc: malloc and free, and mallinfo2's counters (glibc >= 2.33).
LIBC = textwrap.dedent(
    """
    import ctypes, ctypes.util
    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    """
)


# Runs in a fresh interpreter: free a 24 MiB block (glibc mmaps it, and on free raises its threshold to
# 24 MiB), then allocate 8 MiB: mmapped only while the threshold stays fixed. Prints how many more
# mmapped blocks glibc counts (mallinfo2's hblks) with the 8 MiB block held. Large, because the
# threshold only decides once the heap must grow: a block the heap's free top can hold comes from
# there (200 KB did, in CI's environment).
MMAP_PROBE = (
    textwrap.dedent(
        """
    import sys
    from translator_bot.system.malloc import fix_mmap_threshold
    if sys.argv[1] == "fixed":
        assert fix_mmap_threshold()
    """
    )
    + LIBC
    + textwrap.dedent(
        """
    libc.free(libc.malloc(24 << 20))
    before = libc.mallinfo2().hblks
    block = libc.malloc(8 << 20)
    print(libc.mallinfo2().hblks - before)
    libc.free(block)
    """
    )
)


def mmapped_after_a_large_free(mode: str) -> int:
    return run_probe(MMAP_PROBE, mode, unset="MALLOC_MMAP_THRESHOLD_")


def test_a_freed_large_block_does_not_move_the_mmap_threshold() -> None:
    assert mmapped_after_a_large_free("glibc") == 0, (
        "control: glibc kept the threshold; the probe shows nothing"
    )
    assert mmapped_after_a_large_free("fixed") == 1


def test_the_operators_mmap_threshold_wins() -> None:
    from translator_bot.system.malloc import fix_mmap_threshold

    os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    try:
        assert not fix_mmap_threshold()
    finally:
        del os.environ["MALLOC_MMAP_THRESHOLD_"]


# Runs in a fresh interpreter, the allocator tuned as the bot's process is (or left to glibc), after a
# large block was freed as the bot's imports free some: an asyncio datagram endpoint (how aioice receives
# every ICE, DTLS and RTP packet) is sent small datagrams. asyncio reads each into a fresh buffer of its
# maximum datagram size, then shrinks it. Prints 1 when, after the first few, no packet's buffer was a
# mapping of its own (an mmap, an mremap and an munmap per packet: mallinfo2's count of mapped blocks is
# one higher while the packet is handled than between packets) and the heap's releasable top could hold
# the next read's buffer between packets (else each buffer grows the heap and its free trims it back:
# two brk calls per packet).
DATAGRAM_PROBE = (
    textwrap.dedent(
        """
    import asyncio, socket, sys
    from translator_bot.system.malloc import tune_malloc
    if sys.argv[1] == "tuned":
        tune_malloc()
    """
    )
    + LIBC
    + textwrap.dedent(
        """
    libc.free(libc.malloc(24 << 20))
    read_size = asyncio.selector_events._SelectorDatagramTransport.max_size
    mapped_while_handled = []
    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            mapped_while_handled.append(libc.mallinfo2().hblks)
    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        between = []
        for _ in range(20):
            sender.sendto(b"x" * 200, transport.get_extra_info("sockname"))
            await asyncio.sleep(0.001)
            info = libc.mallinfo2()
            between.append((info.hblks, info.keepcost >= read_size))
        sender.close()
        transport.close()
        return between
    between = asyncio.run(main())
    pairs = list(zip(mapped_while_handled, between, strict=True))[5:]
    no_mapping = all(during == after for during, (after, _) in pairs)
    top_holds_a_read = all(room for _, (_, room) in pairs)
    print(int(no_mapping and top_holds_a_read))
    """
    )
)


def received_datagrams_cost_no_memory_syscalls(mode: str) -> bool:
    return run_probe(DATAGRAM_PROBE, mode, unset="MALLOC_MMAP_THRESHOLD_") == 1


def test_a_received_datagram_takes_no_mapping_and_no_heap_growth() -> None:
    assert received_datagrams_cost_no_memory_syscalls("glibc"), (
        "control: with glibc's own settings the probe sees a syscall per datagram"
    )
    assert received_datagrams_cost_no_memory_syscalls("tuned")


# Runs in a fresh interpreter, the allocator tuned as the bot's process is: 200 blocks of 100 KB (under
# the threshold: heap) are written, every other one is freed (holes between live blocks, which glibc
# does not return by itself), then the heap is left alone, trimmed once, or kept trimmed by the task for
# 0.3 s. Prints how many MiB of resident memory that gave back.
TRIM_PROBE = (
    textwrap.dedent(
        """
    from translator_bot.system.malloc import tune_malloc
    tune_malloc()
    """
    )
    + LIBC
    + textwrap.dedent(
        """
    import asyncio, contextlib, os, sys
    from translator_bot.system.malloc import keep_heap_trimmed, trim_heap
    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    blocks = [libc.malloc(100_000) for _ in range(200)]
    for block in blocks:
        ctypes.memset(block, 1, 100_000)
    for block in blocks[::2]:
        libc.free(block)
    before = resident()
    async def kept_trimmed():
        task = asyncio.create_task(keep_heap_trimmed(period_s=0.05))
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if sys.argv[1] == "once":
        assert trim_heap()
    elif sys.argv[1] == "kept":
        asyncio.run(kept_trimmed())
    print(round((before - resident()) / 2**20))
    """
    )
)


def mib_given_back(mode: str) -> int:
    return run_probe(TRIM_PROBE, mode, unset="MALLOC_MMAP_THRESHOLD_")


def test_the_heaps_free_holes_are_given_back() -> None:
    assert mib_given_back("left") < 2, "control: glibc gave the holes back by itself; the probe shows nothing"
    assert mib_given_back("once") >= 8  # of the ~10 MiB freed
    assert mib_given_back("kept") >= 8
