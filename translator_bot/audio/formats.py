"""The two audio formats the bot converts between, stated once for the bot, the fake model server and
the recordings. Free of imports so anything can use it."""

from __future__ import annotations

MODEL_RATE = 24_000  # what the Realtime API reads and writes: mono pcm16 little-endian
ROOM_RATE = 48_000  # what WebRTC Opus runs at
BYTES_PER_SAMPLE = 2
MODEL_BYTES_PER_MS = MODEL_RATE * BYTES_PER_SAMPLE // 1000  # 48
