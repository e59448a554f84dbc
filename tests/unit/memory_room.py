"""A room that lives in memory: the smallest transport that drives the interpreter through the public
`translator_bot.RoomPort`. The test says who is in the meeting and what they send (`queue`); what the
interpreter publishes is kept per listener, and each feed's audio is read as a real transport would."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from collections.abc import AsyncIterator

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

import translator_bot
from translator_bot.fixtures import read_pcm, utterance


class SpeakerTrack(MediaStreamTrack):
    """48 kHz stereo 20 ms frames, paced in real time: silence, one recorded utterance, silence."""

    kind = "audio"

    def __init__(self, utterance_id: str, silence_ms: int = 1500) -> None:
        super().__init__()
        up = np.repeat(read_pcm(utterance(utterance_id)), 2)  # 24 kHz -> 48 kHz
        pad = np.zeros(48 * 300, dtype=np.int16)
        self._mono = np.concatenate([pad, up, np.zeros(48 * silence_ms, dtype=np.int16)])
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        if self._pos >= len(self._mono):
            raise MediaStreamError
        chunk = self._mono[self._pos : self._pos + 960]
        chunk = np.pad(chunk, (0, 960 - len(chunk)))
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, 48_000)
        self._pos += 960
        await asyncio.sleep(0.02)
        return frame


class MemoryFeed:
    """One feed the interpreter published: its audio is read (and counted), its data kept."""

    def __init__(self, track: MediaStreamTrack, for_id: translator_bot.Audience, lang: str) -> None:
        self.track, self.for_id, self.lang = track, for_id, lang
        self.data: list[str] = []
        self.frames = 0
        self.closed = False
        self._reader = asyncio.create_task(self._read(), name=f"memory feed for {for_id}")

    async def _read(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await self.track.recv()
                self.frames += 1

    def send_data(self, text: str) -> bool:
        self.data.append(text)
        return True

    async def relabel(self, lang: str, for_id: translator_bot.Audience) -> None:
        self.lang, self.for_id = lang, for_id

    async def aclose(self) -> None:
        self.closed = True
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


class MemoryRoom:
    """translator_bot.RoomPort over an asyncio queue of room events."""

    def __init__(self, *events: translator_bot.RoomEvent) -> None:
        self.queue: asyncio.Queue[translator_bot.RoomEvent] = asyncio.Queue()
        for event in events:
            self.queue.put_nowait(event)
        self.feeds: list[MemoryFeed] = []

    async def events(self) -> AsyncIterator[translator_bot.RoomEvent]:
        while True:
            yield await self.queue.get()

    async def publish_feed(
        self, track: MediaStreamTrack, *, for_id: translator_bot.Audience, lang: str
    ) -> MemoryFeed:
        feed = MemoryFeed(track, for_id, lang)
        self.feeds.append(feed)
        return feed


def person(pid: str, name: str, language: str) -> translator_bot.PeerChanged:
    return translator_bot.PeerChanged(
        translator_bot.Member(pid, name, translator_bot.parse_language(language))
    )
