"""translator-bot: a live interpreter for WebRTC meetings.

The public API is importable from here (`translator_bot.Interpreter`, `translator_bot.Caption`, ...);
it is loaded on first use, so `import translator_bot` (and `translator-bot --version`) stays fast.
`__version__` is read from the distribution's metadata on first use too, so importing the package
alone does not import `importlib.metadata` (~30 ms of a bare `import translator_bot`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_PUBLIC = {
    "Interpreter": "translator_bot.api",
    "Caption": "translator_bot.api",
    "TranscriptEntry": "translator_bot.api",
    "LanesChanged": "translator_bot.api",
    "LaneStatus": "translator_bot.api",
    "HealthChanged": "translator_bot.api",
    "Health": "translator_bot.api",
    "Ended": "translator_bot.api",
    "Event": "translator_bot.api",
    "EndReason": "translator_bot.api",
    "Result": "translator_bot.api",
    "Settings": "translator_bot.settings",
    "load_settings": "translator_bot.settings",
    "ExitCode": "translator_bot.errors",
    "TranslatorBotError": "translator_bot.errors",
    "SettingsError": "translator_bot.errors",
    "RoomError": "translator_bot.errors",
    "ProviderError": "translator_bot.errors",
    "ProviderFatalError": "translator_bot.errors",
    "ProviderUnavailableError": "translator_bot.errors",
    "RoomPort": "translator_bot.interpreter.port",
    "RoomEvent": "translator_bot.interpreter.port",
    "Publication": "translator_bot.interpreter.port",
    "PeerChanged": "translator_bot.interpreter.port",
    "PeerLeft": "translator_bot.interpreter.port",
    "PeerAudio": "translator_bot.interpreter.port",
    "PeerAudioGone": "translator_bot.interpreter.port",
    "RoomClosed": "translator_bot.interpreter.port",
    "MeetingEnded": "translator_bot.interpreter.port",
    "Member": "translator_bot.interpreter.plan",
    "Audience": "translator_bot.interpreter.plan",
    "Language": "translator_bot.languages",
    "parse_language": "translator_bot.languages",
}

__all__ = [
    "Audience",
    "Caption",
    "EndReason",
    "Ended",
    "Event",
    "ExitCode",
    "Health",
    "HealthChanged",
    "Interpreter",
    "LaneStatus",
    "LanesChanged",
    "Language",
    "MeetingEnded",
    "Member",
    "PeerAudio",
    "PeerAudioGone",
    "PeerChanged",
    "PeerLeft",
    "ProviderError",
    "ProviderFatalError",
    "ProviderUnavailableError",
    "Publication",
    "Result",
    "RoomClosed",
    "RoomError",
    "RoomEvent",
    "RoomPort",
    "Settings",
    "SettingsError",
    "TranscriptEntry",
    "TranslatorBotError",
    "__version__",
    "load_settings",
    "parse_language",
]

if TYPE_CHECKING:
    __version__: str

    from translator_bot.api import (
        Caption,
        Ended,
        EndReason,
        Event,
        Health,
        HealthChanged,
        Interpreter,
        LanesChanged,
        LaneStatus,
        Result,
        TranscriptEntry,
    )
    from translator_bot.errors import (
        ExitCode,
        ProviderError,
        ProviderFatalError,
        ProviderUnavailableError,
        RoomError,
        SettingsError,
        TranslatorBotError,
    )
    from translator_bot.interpreter.plan import Audience, Member
    from translator_bot.interpreter.port import (
        MeetingEnded,
        PeerAudio,
        PeerAudioGone,
        PeerChanged,
        PeerLeft,
        Publication,
        RoomClosed,
        RoomEvent,
        RoomPort,
    )
    from translator_bot.languages import Language, parse_language
    from translator_bot.settings import Settings, load_settings


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from translator_bot.distribution import package_version

        globals()["__version__"] = found = package_version()
        return found
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'translator_bot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, "__version__"})
