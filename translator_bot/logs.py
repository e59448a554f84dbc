"""Logging for people (text) and for log pipelines (JSON lines), with secrets redacted on the way out.

Redaction happens in the formatters, on the finished text: the message, its arguments, a traceback,
a stack and every `extra` field pass through translator_bot.redact whatever logger wrote them. An
exception nobody caught (main thread or another thread) is logged the same way instead of Python
printing it raw, and so are records written before logging is configured.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from translator_bot.redact import redact, register_secrets

if TYPE_CHECKING:
    from translator_bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def register_secret(value: str | None) -> None:
    """Values registered here are masked in every log line, whatever the logger."""
    register_secrets([value])


def scrub(text: str) -> str:
    """The process's redactor (translator_bot.redact.redact), for text written outside logging."""
    return redact(text)


class RedactingFormatter(logging.Formatter):
    """The standard text format, redacted after formatting: a traceback or stack is covered too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    _RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                payload[key] = _json_value(value)
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        # Each value was redacted before it was escaped; the finished line is redacted again for the
        # JSON-escaped forms of anything the values held.
        return redact(json.dumps(payload, ensure_ascii=False))


def _json_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool, type(None))):
        return value
    return redact(str(value))


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (as Python's own last-resort handler does)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def protect_output() -> None:
    """Route what Python would print by itself through the redactor: records logged before logging
    is configured, and exceptions that no code caught (main thread and other threads)."""
    last_resort = _CurrentStderr()
    last_resort.setLevel(logging.WARNING)
    last_resort.setFormatter(RedactingFormatter("%(message)s"))
    logging.lastResort = last_resort
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("translator_bot").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "unknown"
    logging.getLogger("translator_bot").critical(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def configure_logging(level: str, fmt: str, secrets: Iterable[str | None] = ()) -> None:
    register_secrets(secrets)
    protect_output()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiortc/aioice narrate every packet at DEBUG; keep them at INFO unless asked otherwise.
    for noisy in ("aioice", "aiortc", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def configure_logging_for(settings: Settings) -> None:
    """Logging as the settings ask, with every secret setting and URL password redacted."""
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
