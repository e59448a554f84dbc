"""The `join` command: wires room -> audio in -> engine -> playout -> room for one meeting."""

from __future__ import annotations

from translator_bot.errors import ExitCode, TranslatorBotError
from translator_bot.settings import Settings


def run_join(settings: Settings, meeting_id: str, *, create_room: bool = False) -> ExitCode:
    raise TranslatorBotError(
        f"settings are valid, but joining meeting {meeting_id!r} needs the room client, "
        "which is not built yet"
    )
