"""The meeting's transcript: original and translated text per utterance, recorded as soon as each
utterance is final (as a JSON line, by the journal) and rendered as plain text when the meeting ends.

Engines report what the speaker said and what the translation says as separate streams, and the
input transcription may arrive before or after the translated audio. Source text is kept per source
item until a translation claims it: the item with the same id (engines that pair them), otherwise
everything pending on the lane. Text for a source item already claimed replaces what was claimed;
text that arrives after its translation goes to the newest utterance that has none.

An utterance is recorded once its translation is final and the transcription of what was said is
in; a transcription that is late (or failed) gets SOURCE_GRACE_S, and an utterance whose translation
never ends (its model link went away) is recorded after IDLE_S without news. A final text that comes
after the utterance was recorded is recorded again with a higher `revision` (the file is only ever
appended to; a reader keeps the last revision of each `lane` + `item_id`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Protocol

from translator_bot.interpreter.cost import MeetingCost, cost_lines
from translator_bot.redact import redact

SOURCE_GRACE_S = 5.0  # how long a final translation waits for the transcription of its speech
IDLE_S = 30.0  # an utterance without news for this long is recorded as it is


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
    original_final: bool = False
    revision: int = 0  # 0: not recorded yet; then 1, 2... each time it is recorded
    recorded_text: tuple[str, str] | None = None  # (original, translation) as last recorded

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "recorded_text"
        }
        data["listener_ids"] = list(self.listener_ids)
        data["started_at"] = _iso(self.started_at)
        data["ended_at"] = _iso(self.ended_at)
        return data


def record_delay(entry: Utterance) -> float:
    """Seconds until `entry` is recorded as it is (0: now), from what is known of it."""
    if entry.translation_final:
        return 0.0 if entry.original_final else SOURCE_GRACE_S
    return IDLE_S


@dataclass(slots=True)
class _LaneText:
    info: LaneInfo
    pending: dict[str, str] = field(default_factory=dict)  # source item -> text not yet claimed
    pending_final: set[str] = field(default_factory=set)  # pending source items whose text is final


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Schedule = Callable[[float, Callable[[], None]], Cancellable]
Recorder = Callable[[dict[str, object]], None]


def _loop_schedule(delay: float, callback: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay, callback)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _join_surrogates(text: str) -> str:
    """Text with surrogate pairs split over two deltas joined into their character; a lone half at
    the very end is kept as is, for the delta that may complete it (the journal cleans what remains)."""
    if text and "\ud800" <= text[-1] <= "\udbff":
        return _clean(text[:-1]) + text[-1]
    return _clean(text)


def _clean(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Transcript:
    def __init__(
        self,
        meeting_id: str,
        *,
        wall_clock: Callable[[], float] = time.time,
        schedule: Schedule = _loop_schedule,
    ) -> None:
        self.meeting_id = meeting_id
        self.started_at = wall_clock()
        self._now = wall_clock
        self._schedule = schedule
        self._recorder: Recorder | None = None
        self._timers: dict[int, Cancellable] = {}
        self._lanes: dict[str, _LaneText] = {}
        self._by_item: dict[tuple[str, str], Utterance] = {}
        self._by_source: dict[tuple[str, str], Utterance] = {}
        self.utterances: list[Utterance] = []

    @property
    def base_name(self) -> str:
        """`meeting-<id>-<start>`: the file name of this meeting's transcript, without suffix."""
        stamp = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
        safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.meeting_id)[:64]
        return f"meeting-{safe_id}-{stamp}"

    def record_to(self, recorder: Recorder) -> None:
        """From now on every utterance is handed to `recorder` (as a JSON object) once it is final."""
        self._recorder = recorder

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
            entry.original = _clean(text).strip() if final else _join_surrogates(entry.original + text)
            entry.original_final |= final
            self._changed(entry, final)
            return
        orphan = self._newest_without_original(lane)
        if orphan is not None:
            # The translation began before the transcription of what it translates: pair them now.
            earlier = state.pending.pop(item_id, "")
            state.pending_final.discard(item_id)
            orphan.original = _clean(text).strip() if final else _join_surrogates(earlier + text)
            orphan.original_final = final
            self._by_source[(lane, item_id)] = orphan
            self._changed(orphan, final)
            return
        if final:
            state.pending[item_id] = _clean(text).strip()
            state.pending_final.add(item_id)
        else:
            state.pending[item_id] = _join_surrogates(state.pending.get(item_id, "") + text)

    def translation_text(self, lane: str, item_id: str, text: str, final: bool) -> Utterance | None:
        entry = self._entry(lane, item_id)
        if entry is None:
            return None
        if final:
            entry.translation = _clean(text).strip() or entry.translation
            entry.translation_final = True
        else:
            entry.translation = _join_surrogates(entry.translation + text)
        entry.ended_at = self._now()
        self._changed(entry, final)
        return entry

    def translation_done(self, lane: str, item_id: str) -> None:
        """The translation of `item_id` ended (all its audio was sent), whatever came of its text."""
        entry = self._by_item.get((lane, item_id))
        if entry is not None and not entry.translation_final:
            entry.translation = _clean(entry.translation).strip()
            entry.translation_final = True
            self._changed(entry, True)

    def translation_started(self, lane: str, item_id: str) -> Utterance | None:
        entry = self._entry(lane, item_id)
        if entry is not None and entry.revision == 0 and id(entry) not in self._timers:
            self._changed(entry, False)
        return entry

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
        original_final = bool(claimed) and all(source in state.pending_final for source in claimed)
        state.pending_final.difference_update(claimed)
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
            original_final=original_final,
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

    # --- recording -----------------------------------------------------------------------------

    def _changed(self, entry: Utterance, final_text: bool) -> None:
        if self._recorder is None:
            return  # kept in memory only: nothing to record, nothing to time
        if entry.revision:
            # Already recorded: only a final text is worth another line (deltas are followed by one).
            if final_text and entry.recorded_text != (entry.original, entry.translation):
                self._record(entry)
            return
        timer = self._timers.pop(id(entry), None)
        if timer is not None:
            timer.cancel()
        delay = record_delay(entry)
        if delay <= 0:
            self._record(entry)
        else:
            self._timers[id(entry)] = self._schedule(delay, lambda: self._timed_out(entry))

    def _timed_out(self, entry: Utterance) -> None:
        self._timers.pop(id(entry), None)
        if not entry.revision:
            self._record(entry)

    def _record(self, entry: Utterance) -> None:
        entry.revision += 1
        entry.recorded_text = (entry.original, entry.translation)
        if self._recorder is not None:
            self._recorder(entry.to_json())

    def finish(self) -> None:
        """The meeting is over: record every utterance not recorded yet, as it is, in spoken order."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for entry in sorted(self.utterances, key=lambda u: u.started_at):
            if not entry.revision:
                self._record(entry)

    def render_text(self, cost: MeetingCost | None = None) -> str:
        """The transcript for people: who said what, and its translation, in spoken order; the
        meeting's estimated cost as its footer."""
        lines = [f"Meeting {self.meeting_id}, started {_iso(self.started_at)}", ""]
        for entry in sorted(self.utterances, key=lambda u: u.started_at):
            clock = datetime.fromtimestamp(entry.started_at, UTC).strftime("%H:%M:%S")
            lines.append(f"[{clock}] {entry.speaker_name} ({entry.source_language}): {entry.original}")
            lines.append(f"           -> ({entry.target_language}): {entry.translation}")
        if cost is not None:
            names = {
                lane: f"{t.info.speaker_name} ({t.info.source_language} -> {t.info.target_language})"
                for lane, t in self._lanes.items()
            }
            lines += ["", *cost_lines(cost, names)]
        return redact(_clean("\n".join(lines) + "\n"))
