"""Where a server session's audio clock sits on the lane's input.

A server session counts only the audio it received: its audio time `t` is the t-th sample sent on
that socket. When the lane skips input (silence it rested through, a backlog nobody was sent) the two
clocks part, so the link keeps an anchor at every skip and maps a server position (a VAD's
`audio_start_ms`) back to the input sample it names. Pure bookkeeping.
"""

from __future__ import annotations

from bisect import bisect_right

MAX_ANCHORS = 256  # the oldest are forgotten: positions that old map onto the oldest kept


class InputTimeline:
    def __init__(self, origin: int) -> None:
        self._server: list[int] = [0]  # server sample at which each stretch of contiguous input begins
        self._input: list[int] = [origin]  # the input sample it is
        self.server_samples = 0  # samples sent on the socket so far
        self._next = origin  # the input sample that follows the last one sent

    def sent(self, start: int, count: int) -> None:
        """`count` input samples from `start` went out on the socket."""
        if start != self._next:
            if self._server[-1] == self.server_samples:  # nothing sent since the last anchor
                self._input[-1] = start
            else:
                self._server.append(self.server_samples)
                self._input.append(start)
                if len(self._server) > MAX_ANCHORS:
                    del self._server[0], self._input[0]
        self.server_samples += count
        self._next = start + count

    def to_input(self, server_sample: int) -> int:
        """The input sample at the server session's audio position `server_sample`."""
        index = max(0, bisect_right(self._server, server_sample) - 1)
        return self._input[index] + server_sample - self._server[index]
