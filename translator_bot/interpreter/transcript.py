"""The meeting's transcript: original and translated text per utterance, kept in order and written
as JSON lines (for machines) and plain text (for people) when the meeting ends.

Engines report what the speaker said and what the translation says as separate streams, and the
input transcription may arrive before or after the translated audio. Source text is kept per source
item until a translation claims it: the item with the same id (engines that pair them), otherwise
everything pending on the lane. Text for a source item already claimed replaces what was claimed;
text that arrives after its translation goes to the newest utterance that has none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from translator_bot.redact import redact


@dataclass(frozen=True, slots=True)
class LaneInfo:
    lane: str
    speaker_id: str
    speaker_name: str
    source_language: str
    target_language: str
    listener_ids: tuple[str, ...]


@dataclass(slots=True)
class Utterance:
    lane: str
    item_id: str
    speaker_id: str
    speaker_name: str
    source_language: str
    target_language: str
    listener_ids: list[str]
    started_at: float
    ended_at: float
    original: str = ""
    translation: str = ""
    translation_final: bool = False

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["started_at"] = _iso(self.started_at)
        data["ended_at"] = _iso(self.ended_at)
        return data


@dataclass(slots=True)
class _LaneText:
    info: LaneInfo
    pending: dict[str, str] = field(default_factory=dict)  # source item -> text not yet claimed


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Transcript:
    def __init__(self, meeting_id: str, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.meeting_id = meeting_id
        self.started_at = wall_clock()
        self._now = wall_clock
        self._lanes: dict[str, _LaneText] = {}
        self._by_item: dict[tuple[str, str], Utterance] = {}
        self._by_source: dict[tuple[str, str], Utterance] = {}
        self.utterances: list[Utterance] = []

    def lane_opened(self, info: LaneInfo) -> None:
        existing = self._lanes.get(info.lane)
        if existing is None:
            self._lanes[info.lane] = _LaneText(info)
        else:
            existing.info = info

    def source_text(self, lane: str, item_id: str, text: str, final: bool) -> None:
        state = self._lanes.get(lane)
        if state is None or not text:
            return
        entry = self._by_item.get((lane, item_id)) or self._by_source.get((lane, item_id))
        if entry is not None:
            entry.original = text.strip() if final else (entry.original + text)
            return
        orphan = self._newest_without_original(lane)
        if orphan is not None:
            # The translation began before the transcription of what it translates: pair them now.
            earlier = state.pending.pop(item_id, "")
            orphan.original = text.strip() if final else earlier + text
            self._by_source[(lane, item_id)] = orphan
            return
        state.pending[item_id] = text.strip() if final else state.pending.get(item_id, "") + text

    def translation_text(self, lane: str, item_id: str, text: str, final: bool) -> Utterance | None:
        entry = self._entry(lane, item_id)
        if entry is None:
            return None
        if final:
            entry.translation = text.strip() or entry.translation
            entry.translation_final = True
        else:
            entry.translation += text
        entry.ended_at = self._now()
        return entry

    def translation_started(self, lane: str, item_id: str) -> Utterance | None:
        return self._entry(lane, item_id)

    def _entry(self, lane: str, item_id: str) -> Utterance | None:
        state = self._lanes.get(lane)
        if state is None:
            return None
        entry = self._by_item.get((lane, item_id))
        if entry is not None:
            return entry
        info = state.info
        now = self._now()
        # Engines that pair ids (translate) claim their own item; others claim all that is pending.
        claimed = [item_id] if item_id in state.pending else list(state.pending)
        original = " ".join(state.pending.pop(source).strip() for source in claimed).strip()
        entry = Utterance(
            lane=lane,
            item_id=item_id,
            speaker_id=info.speaker_id,
            speaker_name=info.speaker_name,
            source_language=info.source_language,
            target_language=info.target_language,
            listener_ids=list(info.listener_ids),
            started_at=now,
            ended_at=now,
            original=original,
        )
        self._by_item[(lane, item_id)] = entry
        for source in claimed:
            self._by_source[(lane, source)] = entry
        self.utterances.append(entry)
        return entry

    def _newest_without_original(self, lane: str) -> Utterance | None:
        for entry in reversed(self.utterances):
            if entry.lane == lane:
                return entry if not entry.original else None
        return None

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write `<meeting>-<start>.jsonl` and `.txt`; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
        safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.meeting_id)[:64]
        base = directory / f"meeting-{safe_id}-{stamp}"
        jsonl, text = base.with_suffix(".jsonl"), base.with_suffix(".txt")
        ordered = sorted(self.utterances, key=lambda u: u.started_at)
        with jsonl.open("w", encoding="utf-8") as out:
            for entry in ordered:
                out.write(redact(json.dumps(entry.to_json(), ensure_ascii=False)) + "\n")
        lines = [f"Meeting {self.meeting_id}, started {_iso(self.started_at)}", ""]
        for entry in ordered:
            clock = datetime.fromtimestamp(entry.started_at, UTC).strftime("%H:%M:%S")
            lines.append(f"[{clock}] {entry.speaker_name} ({entry.source_language}): {entry.original}")
            lines.append(f"           -> ({entry.target_language}): {entry.translation}")
        text.write_text(redact("\n".join(lines)) + "\n", encoding="utf-8")
        return jsonl, text
