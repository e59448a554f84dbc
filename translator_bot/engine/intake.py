"""A lane's input on its way to the model: the kept history, the appends, the replay at a switch.

Audio is written once (`push`) and read in the engine's append size by whichever link is current
(`next_chunk`). When a new link takes over (`switch`), the input goes back to the engine's resume
point so speech a drop cut is heard again whole, bounded by `MAX_REPLAY_MS` because every replayed
second is paid for again. While the lane rests (`engine.silence_gate`: the model gains nothing from
more silence) nothing is handed out and the silence is skipped, keeping only the pre-roll; the first
sound wakes it, and the pre-roll goes out ahead of that sound. No I/O here: the supervisor moves what
this hands out.
"""

from __future__ import annotations

from collections.abc import Callable

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.pcm import ms_to_samples
from translator_bot.audio.vad import SharedChunk
from translator_bot.engine.feed import AudioFeed, samples_to_ms
from translator_bot.metrics import ENGINE_AUDIO_DROPPED_SECONDS

MAX_REPLAY_MS = 10_000  # most input a new link is sent again (or late) at once: a long sentence


class Intake:
    def __init__(
        self,
        engine_name: str,
        chunk_ms: int,
        history_seconds: float,
        on_speech_start: Callable[[], None] | None = None,
        preroll_ms: int = 500,
    ) -> None:
        self.feed = AudioFeed(history_seconds, on_speech_start=on_speech_start)
        self._engine_name = engine_name
        self._chunk = ms_to_samples(chunk_ms, MODEL_RATE)
        self._preroll = ms_to_samples(preroll_ms, MODEL_RATE)
        self._dropped_reported = 0
        self.replayed_ms = 0  # input sent a second time after drops (paid for twice)
        self.resting = False  # sending nothing: the model gains nothing from more silence
        self.rests = 0  # times the lane went to rest
        self.rested_samples = 0  # silence never sent because the lane rested (not billed)

    def push(self, pcm: bytes, shared: SharedChunk | None = None) -> bool:
        """Keep `pcm` (`shared`: the same audio as other detectors read it, `audio.vad.SharedChunk`);
        True when a whole append is waiting. Raises TypeError/ValueError for non-audio."""
        feed = self.feed
        before = feed.end
        feed.push(bytes(pcm), shared)
        if feed.dropped_samples > self._dropped_reported:
            lost = feed.dropped_samples - self._dropped_reported
            self._dropped_reported = feed.dropped_samples
            ENGINE_AUDIO_DROPPED_SECONDS.labels(engine=self._engine_name).inc(lost / MODEL_RATE)
        if self.resting:
            if feed.quiet_since > before:
                self.wake()  # a sound: the pre-roll kept before it goes out with it
            else:
                self._skip_silence()
                return False
        return feed.available() >= self._chunk

    def next_chunk(self) -> bytes | None:
        """The next append's audio, or None until a whole one has arrived (or while resting)."""
        if self.resting or self.feed.available() < self._chunk:
            return None
        return self.feed.take(self._chunk)

    def rest(self) -> None:
        """Send nothing more until a sound (or `wake`): the model gains nothing from this silence."""
        if not self.resting:
            self.resting = True
            self.rests += 1
            self._skip_silence()

    def wake(self) -> None:
        """Send again, from the pre-roll kept before now."""
        self.resting = False

    def _skip_silence(self) -> None:
        feed = self.feed
        before = feed.sent_upto
        feed.skip_to(feed.end - self._preroll)
        self.rested_samples += feed.sent_upto - before

    def switch(self, resume: int | None) -> int:
        """A new link takes the input from `resume` (None: from where the last one stopped); returns
        the ms of input it hears again."""
        feed = self.feed
        self.wake()  # the new link hears from the resume point; it rests again once it may
        before = feed.sent_upto
        position = before if resume is None else min(before, resume)
        # Bounded: after a long outage the new link gets the recent past, not a costly backlog.
        feed.seek(max(position, feed.end - ms_to_samples(MAX_REPLAY_MS, MODEL_RATE)))
        replayed = samples_to_ms(before - feed.sent_upto) if feed.sent_upto < before else 0
        self.replayed_ms += replayed
        return replayed
