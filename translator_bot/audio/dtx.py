"""Discontinuous transmission: which 20 ms slots of an idle feed go out, the way Opus DTX does it.

A feed that has nothing to play sends, without DTX, one packet of encoded silence every 20 ms: 50
packets a second through aiortc's RTP sender (packing, SRTP, the socket) for nothing a listener can
hear. With DTX, once the feed is quiet it sends:

- a hangover of `hangover` quiet slots as ordinary frames (libopus waits 200 ms, its
  NB_SPEECH_FRAMES_BEFORE_DTX, before its first DTX frame). Besides following libopus, this flushes
  receivers that release a frame only once later ones have arrived: aiortc's audio jitter buffer
  hands a frame on when 4 more are in, so without a hangover the end of each sentence would wait
  there for the next packets, up to the next keep-alive;
- then a DTX frame at once (WebRTC sends the first DTX frame of a pause and drops the repeats, so the
  receiver knows the pause is deliberate; its NetEq plays comfort noise for it, not loss concealment);
- then one DTX frame every `keepalive` slots (libopus refreshes every 400 ms, its MAX_CONSECUTIVE_DTX),
  which keeps the SFU's no-media timer (Janus: 1 s by default) and every NAT binding fresh;
- the next slot that is not quiet goes out at once, as an ordinary frame;
- while a listener connects (`keep_sending`: the feed was just published, or relabelled for new
  people), a packet in every slot for `DTX_WELCOME_SLOTS`, quiet or not. A receiver that releases
  audio only once a few packets are in would otherwise play nothing until that many keep-alives had
  come: aiortc's jitter buffer waits for 5, 2-3 s of a feed that went quiet before the listener
  joined (browsers play comfort noise from the first DTX frame and need none of it).

The RTP timestamps of the slots that are not sent are skipped (the caller's pts keep following the
clock) while the sequence numbers stay contiguous, as RFC 3550 and RFC 7587 section 3.1.3 describe
for DTX: receivers tell a pause from a loss by the sequence numbers.

"Quiet" is the caller's decision: nothing queued to play, and the encoder settled on its silence
frame, so that the speech tail in the codec's look-ahead has gone out in full before anything is held
back. Pure: slot numbers in, decisions out.
"""

from __future__ import annotations

import enum

__all__ = ["DTX_HANGOVER_SLOTS", "DTX_KEEPALIVE_SLOTS", "DTX_WELCOME_SLOTS", "DtxSchedule", "Send"]

# libopus's own DTX timing (silk/define.h): 10 frames of no activity before DTX, then at most 20 DTX
# frames in a row (400 ms) before a refresh.
DTX_HANGOVER_SLOTS = 10
DTX_KEEPALIVE_SLOTS = 20
# A packet in every slot for 3 s once a listener may be connecting: a subscription through the room
# server (its offer, the answer, ICE and DTLS) took 0.2 s here and takes longer across the internet.
# 150 packets once per listener, against the 2-3 s of nothing they spare an aiortc listener.
DTX_WELCOME_SLOTS = 150


class Send(enum.Enum):
    FRAME = "frame"  # the slot's own packet (speech, the codec's tail, or the hangover's silence)
    DTX = "dtx"  # a DTX frame: the codec's TOC byte alone
    NOTHING = "nothing"  # not sent; its RTP timestamp is skipped


class DtxSchedule:
    """Decides, slot by slot, what an idle feed sends. Slots are numbered by the feed's schedule
    (slot n has pts n * 960); they may be skipped, but never go backwards."""

    def __init__(self, hangover: int = DTX_HANGOVER_SLOTS, keepalive: int = DTX_KEEPALIVE_SLOTS) -> None:
        if hangover < 0 or keepalive < 1:
            raise ValueError(f"need hangover >= 0 and keepalive >= 1, got {hangover}, {keepalive}")
        self._hangover = hangover
        self._keepalive = keepalive
        self._quiet_from: int | None = None  # first slot of the current quiet stretch
        self._last_sent: int | None = None  # last slot a packet went out for
        self._in_dtx = False
        self._welcome_until = 0  # every slot before this one is sent (keep_sending)

    @property
    def in_dtx(self) -> bool:
        """The feed is holding packets back (past the hangover of a quiet stretch)."""
        return self._in_dtx

    def decide(self, slot: int, *, quiet: bool) -> Send:
        """What to send for `slot`: `quiet` when nothing is playing and the encoder is settled."""
        if not quiet:
            self._quiet_from = None
            self._in_dtx = False
            return self._sent(slot, Send.FRAME)
        if self._quiet_from is None:
            self._quiet_from = slot
        if slot - self._quiet_from < self._hangover or slot < self._welcome_until:
            self._in_dtx = False
            return self._sent(slot, Send.FRAME)
        if not self._in_dtx or self._last_sent is None or slot - self._last_sent >= self._keepalive:
            self._in_dtx = True
            return self._sent(slot, Send.DTX)
        return Send.NOTHING

    def keep_sending(self, until_slot: int) -> None:
        """Send every slot before `until_slot`, quiet or not (a listener is connecting); then, if still
        quiet, the pause's first DTX frame at once and keep-alives as before."""
        self._welcome_until = max(self._welcome_until, until_slot)

    def next_packet_slot(self) -> int | None:
        """While in DTX: the slot of the next keep-alive if the feed stays quiet (None otherwise)."""
        if not self._in_dtx or self._last_sent is None:
            return None
        return self._last_sent + self._keepalive

    def _sent(self, slot: int, send: Send) -> Send:
        self._last_sent = slot
        return send
