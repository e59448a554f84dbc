"""Which fixture utterance is this user audio? Recognition of a conversation's audio items, in commit
order and off the event loop, and the input transcript the real service sends for each.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import numpy.typing as npt

from translator_bot.fake.base_session import UNRECOGNISED_TRANSCRIPT, SessionContext
from translator_bot.fake.conversation import Item, audio_tokens, text_tokens
from translator_bot.fake.events import EventSink, transcript_pieces
from translator_bot.fake.recognizer import Recognition
from translator_bot.fake.state import SessionRecord

log = logging.getLogger(__name__)


class Recognitions:
    """The recognition of each user audio item, by item id; `run()` is the worker that produces them."""

    def __init__(self, ctx: SessionContext, record: SessionRecord) -> None:
        self._ctx = ctx
        self._record = record
        self._results: dict[str, asyncio.Future[Recognition]] = {}
        self._queue: asyncio.Queue[tuple[npt.NDArray[np.int16], asyncio.Future[Recognition]]]
        self._queue = asyncio.Queue()

    def submit(self, item_id: str, pcm: npt.NDArray[np.int16]) -> asyncio.Future[Recognition]:
        future: asyncio.Future[Recognition] = asyncio.get_running_loop().create_future()
        self._results[item_id] = future
        self._queue.put_nowait((pcm, future))
        return future

    def get(self, item_id: str) -> asyncio.Future[Recognition] | None:
        return self._results.get(item_id)

    async def run(self) -> None:
        """One segment at a time, in commit order, off the event loop."""
        while True:
            pcm, future = await self._queue.get()
            result = await asyncio.to_thread(self._ctx.catalog.recognise, pcm)
            if result.utterance_id is None:
                self._record.unrecognised += 1
            else:
                self._record.recognised.append(result.utterance_id)
            log.info(
                "session %s heard %s (score %.3f, next %.3f, %s)",
                self._record.id,
                result.utterance_id,
                result.score,
                result.runner_up_score,
                result.reason,
            )
            if not future.done():
                future.set_result(result)


async def send_input_transcript(
    sink: EventSink, ctx: SessionContext, item: Item, future: asyncio.Future[Recognition]
) -> None:
    """The item's input transcription (deltas, then completed with usage) once it is recognised."""
    result = await future
    await asyncio.sleep(ctx.options.transcript_delay_ms / 1000)
    text = (
        ctx.catalog.utterance(result.utterance_id).text
        if result.utterance_id is not None
        else UNRECOGNISED_TRANSCRIPT
    )
    item.text = text
    for piece in transcript_pieces(text):
        await sink.send(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item.id,
                "content_index": 0,
                "delta": piece,
            }
        )
    audio_in, text_out = audio_tokens(item.audio_ms), text_tokens(text)
    await sink.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item.id,
            "content_index": 0,
            "transcript": text,
            "usage": {
                "type": "tokens",
                "input_tokens": audio_in,
                "output_tokens": text_out,
                "total_tokens": audio_in + text_out,
                "input_token_details": {"audio_tokens": audio_in, "text_tokens": 0},
            },
        }
    )
