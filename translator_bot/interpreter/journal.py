"""The transcript on disk while the meeting runs: one JSON line per utterance, appended as soon as it
is final and made durable (fsync) before the next, so a SIGKILL, an OOM kill or a frozen loop loses
at most the utterances still being spoken. The readable `.txt` is rendered once, when the bot leaves,
into a temporary file that is renamed over the final name (never a half-written file).

All file I/O happens in one writer thread fed by a bounded queue: an fsync can take tens of
milliseconds on a busy disk (much longer on network storage), far longer than the 20 ms audio frames
the event loop must keep pacing. The loop only serialises the line (microseconds) and enqueues it.
The thread writes everything waiting in one write and one fsync (group commit), so a slow disk
costs fsyncs, not a growing backlog. Optionally every line also goes to stdout, for log collectors
that outlive the pod (a Kubernetes Job's emptyDir does not).

A write that fails (directory not writable, disk full) is logged with its cause and never raised to
the meeting: interpretation goes on, the lines stay in memory for the `.txt`, and the file is cut
back to its last whole line so that it never ends in half a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from translator_bot.redact import redact

log = logging.getLogger(__name__)

QUEUE_LINES = 10_000  # ~hours of speech; only a writer stuck on a dead disk fills it
CLOSE_TIMEOUT_S = 1.0  # a hung disk must not hold up the exit (SIGTERM -> exit within 5 s)


def clean_text(text: str) -> str:
    """Text as UTF-8 can carry it: surrogate pairs joined into their character, lone surrogates
    (half a pair, which a model can send when a token boundary splits an emoji) as U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encode_line(record: dict[str, object]) -> bytes:
    """One record as one UTF-8 JSON line; any text is written (see `clean_text`), no secret is."""
    return (redact(clean_text(json.dumps(record, ensure_ascii=False))) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Line:
    data: bytes
    stdout: bytes | None


@dataclass(frozen=True, slots=True)
class _Render:
    path: Path
    text: str


_Job = _Line | _Render | None  # None: no more work


@dataclass(slots=True)
class JournalStatus:
    lines_written: int = 0
    lines_failed: int = 0  # not in the file (they are still in the .txt, and on stdout if enabled)
    text_written: bool = False
    error: str | None = None  # the first failure's cause, for the closing log line


class TranscriptJournal:
    def __init__(
        self,
        jsonl_path: Path,
        *,
        stdout: BinaryIO | None = None,
        stdout_fields: dict[str, object] | None = None,
        max_lines: int = QUEUE_LINES,
    ) -> None:
        """`stdout`: also write each line there (with `stdout_fields` first, to tell the lines apart
        from other output). Nothing touches the disk until the first line: a meeting in which
        nothing was said leaves no file."""
        self.path = jsonl_path
        self._stdout = stdout
        self._stdout_fields = stdout_fields or {}
        self._queue: queue.Queue[_Job] = queue.Queue(max_lines)
        self.status = JournalStatus()
        self._fd: int | None = None
        self._good_size = 0  # bytes of whole lines in the file
        self._failing = False
        self._retry: list[bytes] = []  # lines whose write failed, oldest first (bounded like the queue)
        self._dropped = 0  # lines the full queue refused (counted on the loop; the thread counts its own)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="transcript writer", daemon=True)
        self._thread.start()

    @classmethod
    def for_meeting(
        cls, directory: Path, base_name: str, *, to_stdout: bool, meeting_id: str
    ) -> TranscriptJournal:
        return cls(
            directory / f"{base_name}.jsonl",
            stdout=sys.stdout.buffer if to_stdout else None,
            stdout_fields={"transcript": meeting_id},
        )

    # --- called on the event loop (never blocks) --------------------------------------------------

    def append(self, record: dict[str, object]) -> None:
        if self._closed:
            log.warning("transcript line after close dropped: %s", record.get("item_id"))
            return
        stdout = encode_line({**self._stdout_fields, **record}) if self._stdout is not None else None
        try:
            self._queue.put_nowait(_Line(encode_line(record), stdout))
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1:
                log.error(
                    "transcript writer is %d lines behind (%s is not accepting writes): utterances that "
                    "do not fit go to the .txt only",
                    self._queue.maxsize,
                    self.path,
                )

    async def aclose(self, text_path: Path | None = None, text: str = "") -> JournalStatus:
        """Write what is queued, then the `.txt` (if given), and stop the thread; waits at most
        CLOSE_TIMEOUT_S (a hung disk must not hold the exit)."""
        if self._closed:
            return self.status
        self._closed = True
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        self._on_finished = lambda: _call_soon(loop, finished)
        if not self._thread.is_alive():
            self.status.lines_failed += self._dropped
            return self.status
        jobs: list[_Job] = [_Render(text_path, text)] if text_path is not None else []
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                for job in [*jobs, None]:
                    await self._put(job)
                await asyncio.shield(finished)
        except TimeoutError:
            log.error("the transcript writer did not finish within %.1f s: %s", CLOSE_TIMEOUT_S, self.path)
        self.status.lines_failed += self._dropped
        return self.status

    async def _put(self, job: _Job) -> None:
        while True:
            try:
                self._queue.put_nowait(job)
                return
            except queue.Full:
                await asyncio.sleep(0.01)

    # --- the writer thread -------------------------------------------------------------------------

    _on_finished: Callable[[], object] | None = None

    def _run(self) -> None:
        try:
            while True:
                jobs = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while len(jobs) < 256:
                        jobs.append(self._queue.get_nowait())
                try:
                    lines = [job for job in jobs if isinstance(job, _Line)]
                    if lines:
                        self._write_lines(lines)
                    for job in jobs:
                        if isinstance(job, _Render):
                            self._render(job)
                except Exception:
                    log.exception("transcript writer: unexpected error (it keeps running)")
                if None in jobs:
                    return
        finally:
            self.status.lines_failed += len(self._retry)
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            if self._on_finished is not None:
                self._on_finished()

    def _write_lines(self, lines: Sequence[_Line]) -> None:
        if self._stdout is not None:
            try:
                self._stdout.write(b"".join(line.stdout or b"" for line in lines))
                self._stdout.flush()
            except (OSError, ValueError) as exc:
                log.error("cannot write the transcript to stdout: %s", exc)
        # Lines that failed before are tried again first: a disk that was full for a moment loses nothing.
        batch = self._retry + [line.data for line in lines]
        data = b"".join(batch)
        try:
            fd = self._open()
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            self._cut_back()
            keep = self._queue.maxsize
            self.status.lines_failed += max(0, len(batch) - keep)
            self._retry = batch[-keep:]
            self._failed(exc)
            return
        self._retry = []
        self._good_size += len(data)
        self.status.lines_written += len(batch)
        if self._failing:
            self._failing = False
            log.warning("transcript file %s is being written again", self.path)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            self._good_size = os.fstat(fd).st_size
            self._fd = fd
        return self._fd

    def _cut_back(self) -> None:
        """After a failed or short write: drop the partial line, so the file holds only whole ones."""
        if self._fd is None:
            return
        try:
            if os.fstat(self._fd).st_size != self._good_size:
                os.ftruncate(self._fd, self._good_size)
        except OSError as exc:
            log.error("cannot cut the transcript file %s back to its last whole line: %s", self.path, exc)

    def _failed(self, exc: OSError) -> None:
        cause = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        if self.status.error is None:
            self.status.error = cause
        if not self._failing:
            self._failing = True
            log.error("cannot write the transcript to %s: %s", self.path, cause)

    def _render(self, job: _Render) -> None:
        temporary = job.path.with_name(f".{job.path.name}.partial")
        try:
            job.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                _write_all(fd, clean_text(job.text).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, job.path)
            _fsync_directory(job.path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            self._failed(exc)
            return
        self.status.text_written = True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write returned {written}")
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _call_soon(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    """From the writer thread: wake the closer, unless it gave up and its loop is already gone."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
