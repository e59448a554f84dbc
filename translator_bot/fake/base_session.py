"""What both endpoints share: the receive loop, strict client-event validation, the session cap,
and the faults that act on a live socket (drop, malformed event).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from aiohttp import WSMsgType, web
from pydantic import BaseModel, TypeAdapter, ValidationError

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.fake.catalog import FixtureCatalog
from translator_bot.fake.events import MALFORMED_EVENTS, EventSink
from translator_bot.fake.state import (
    DropFault,
    FakeOptions,
    FakeState,
    FaultConfig,
    SessionRecord,
    ViolationRecord,
)
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_APPEND_BYTES = 15 * 1024 * 1024
# The input transcript of a segment the recogniser could not name, on both endpoints.
UNRECOGNISED_TRANSCRIPT = "[unrecognised speech]"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


@dataclass
class SessionContext:
    """Per-server things every session uses."""

    state: FakeState
    faults: FaultConfig
    options: FakeOptions
    catalog: FixtureCatalog


class BaseSession:
    """One WebSocket connection. Subclasses implement `open()` and `dispatch()`."""

    client_types: frozenset[str]

    @property
    def client_adapter(self) -> TypeAdapter[Any]:
        """The validator of what the client may send (built on first use, see engine.protocol)."""
        raise NotImplementedError

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        record: SessionRecord,
        ctx: SessionContext,
        sink: EventSink,
    ) -> None:
        self.ws = ws
        self.request = request
        self.record = record
        self.ctx = ctx
        self.sink = sink
        self._started = time.monotonic()
        self._samples = 0
        self._drop_at_ms: int | None = None
        self._drop_at_output_ms: int | None = None
        self._dropped = False
        self._cap_changed = asyncio.Event()
        self._tasks = TaskSet(f"session {record.id}", logger=log)
        sink.on_output_audio = self._output_sent

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client goes, a fault drops it, or the cap ends it."""
        try:
            await self.open()
            await self._apply_owed_faults()
            self.spawn(self._expire(), "expiry")
            async for message in self.ws:
                if self._dropped:
                    break  # frames the transport had already read died with the connection
                if message.type == WSMsgType.TEXT:
                    await self._receive(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._violation(None, "binary frame (the protocol carries JSON text frames only)")
                    await self.sink.error(
                        "invalid_request_error", "invalid_json", "Binary frames are not supported."
                    )
                else:
                    break
        finally:
            await self.shutdown()

    async def open(self) -> None:
        raise NotImplementedError

    async def dispatch(self, event: BaseModel, data: dict[str, Any]) -> None:
        raise NotImplementedError

    async def on_close(self) -> None:
        """Subclass hook: stop background work before the record is closed."""

    async def shutdown(self) -> None:
        await self.on_close()
        await self._tasks.close()  # called by run() in the connection's handler, never by a task of the set
        if not self.ws.closed:
            await self.ws.close()
        if self.record.closed_at is None:
            self.record.closed_at = time.time()
            self.record.close_reason = self.record.close_reason or "client_closed"

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str) -> asyncio.Task[_T]:
        """Background work owned by this session: cancelled on close; a crash ends the session."""
        return self._tasks.spawn(coro, name=f"{self.record.id}:{name}", on_done=self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or (exc := task.exception()) is None:
            return  # the task set has logged the crash with the task's name
        self.ctx.state.internal_errors.append(f"{task.get_name()}: {exc!r}")
        if not self.ws.closed and not self._tasks.closed:
            # Ending the session makes the failure visible to the client and its tests.
            self._tasks.spawn(
                self.ws.close(code=1011, message=b"internal error"), name=f"{self.record.id}:close"
            )

    # --- client events --------------------------------------------------------------------------

    async def _receive(self, raw: str) -> None:
        self.record.events_received += 1
        try:
            data = json.loads(raw)
        except ValueError as exc:
            await self._violation(None, f"not JSON: {exc}")
            await self.sink.error("invalid_request_error", "invalid_json", f"Invalid JSON: {exc}")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await self._violation(None, "not an object with a string 'type'")
            await self.sink.error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'type'.",
                param="type",
            )
            return
        event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        if data["type"] not in self.client_types:
            await self._violation(data["type"], "unknown event type")
            await self.sink.error(
                "invalid_request_error",
                "invalid_value",
                f"Invalid value: '{data['type']}'. Supported values are: "
                + ", ".join(f"'{t}'" for t in sorted(self.client_types))
                + ".",
                param="type",
                event_id=event_id,
            )
            return
        try:
            event: BaseModel = self.client_adapter.validate_python(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            param = _param_path(first.get("loc", ()))
            await self._violation(data["type"], f"{param}: {first.get('msg')}")
            if first.get("type") == "missing":
                code, message = "missing_required_parameter", f"Missing required parameter: '{param}'."
            else:
                code, message = "invalid_value", f"Invalid value for '{param}': {first.get('msg')}."
            await self.sink.error("invalid_request_error", code, message, param=param, event_id=event_id)
            return
        await self.dispatch(event, data)

    async def _violation(self, event_type: str | None, reason: str) -> None:
        log.warning("session %s: invalid client event %s: %s", self.record.id, event_type, reason)
        self.record.contract_violations.append(ViolationRecord(event_type, reason))

    async def decode_audio(self, audio_b64: str, event_id: str | None) -> npt.NDArray[np.int16] | None:
        """pcm16 samples of an append, or None after answering with the real service's error."""
        try:
            raw = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            await self.sink.error(
                "invalid_request_error",
                "invalid_value",
                "Invalid 'audio'. Expected base64-encoded audio bytes.",
                param="audio",
                event_id=event_id,
            )
            return None
        if len(raw) > MAX_APPEND_BYTES or len(raw) % 2:
            await self.sink.error(
                "invalid_request_error",
                "invalid_value",
                "Invalid 'audio': expected whole 16-bit samples, at most 15 MiB per event.",
                param="audio",
                event_id=event_id,
            )
            return None
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        self._samples += len(samples)
        self.record.appends_received += 1
        self.record.audio_ms_received = self.audio_ms
        if self._drop_at_ms is not None and self.audio_ms >= self._drop_at_ms:
            self.drop("fault: drop after audio")
            return None
        return samples

    @property
    def audio_ms(self) -> int:
        """The session's audio clock: milliseconds of input received so far."""
        return self._samples * 1000 // MODEL_RATE

    # --- faults and the cap ---------------------------------------------------------------------

    def arm_drop(self, fault: DropFault) -> None:
        if fault.after_output_ms is not None:
            self._drop_at_output_ms = self.sink.output_audio_ms + fault.after_output_ms
        elif fault.after_audio_ms is None:
            self.drop("fault: drop")
        else:
            self._drop_at_ms = self.audio_ms + fault.after_audio_ms

    def _output_sent(self) -> None:
        """A drop armed on output fires in the middle of a translation, as a network failure does."""
        if self._drop_at_output_ms is not None and self.sink.output_audio_ms >= self._drop_at_output_ms:
            self._drop_at_output_ms = None
            self.drop("fault: drop during a translation")

    def drop(self, reason: str) -> None:
        """Lose the connection without a close frame, like a network failure (client sees 1006)."""
        log.info("session %s: dropping the socket (%s)", self.record.id, reason)
        self._dropped = True
        self.record.close_reason = reason
        self.record.closed_at = self.record.closed_at or time.time()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def send_malformed(self, kind: str = "bad_fields") -> None:
        await self.sink.send_raw(MALFORMED_EVENTS[kind]())

    async def send_quota_error(self) -> None:
        await self.sink.error("insufficient_quota", "insufficient_quota", QUOTA_MESSAGE)

    def cap_changed(self) -> None:
        self._cap_changed.set()

    async def _apply_owed_faults(self) -> None:
        faults = self.ctx.faults
        while faults.pending_malformed > 0:
            faults.pending_malformed -= 1
            await self.send_malformed()
        if faults.pending_drop_next is not None:
            fault, faults.pending_drop_next = faults.pending_drop_next, None
            self.arm_drop(fault)

    async def _expire(self) -> None:
        while True:
            deadline = self._started + self.ctx.faults.session_max_seconds
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cap_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cap_changed.wait(), timeout=remaining)
        cap = self.ctx.faults.session_max_seconds
        duration = f"{round(cap / 60)} minutes" if cap >= 60 else f"{cap:g} seconds"
        await self.sink.error(
            "invalid_request_error",
            "session_expired",
            f"Your session hit the maximum duration of {duration}.",
        )
        self.record.close_reason = "session_expired"
        await self.ws.close(code=1001, message=b"session expired")


def _param_path(loc: tuple[Any, ...] | Any) -> str:
    """`('session.update', 'session', 'RealtimeSessionCreateRequest', 'type')` -> `session.type`."""
    parts = [str(p) for p in tuple(loc)[1:] if not (isinstance(p, str) and p[:1].isupper())]
    return ".".join(parts) or "type"
