"""Whether a lane's provider is working: the lane's backoff, and the outage it is in, if any.

Pure bookkeeping on times given by the caller (loop time `now`; `wall` for people), so the rules
are read in one place: one backoff per lane (0.5 s doubling to 8 s, with jitter) that persists
across drops and is reset only by a link that proved healthy (delivered a translation or stayed up
`healthy_after_s`), so a server that accepts and then closes at once is retried ever more slowly
instead of in a storm. While no link serves, the lane is in an `Outage` (since, reason) for /healthz;
only an outage longer than `give_up_after_s` ends the lane with ProviderUnavailableError (exit 5).
"""

from __future__ import annotations

from translator_bot.engine.base import Outage
from translator_bot.engine.lifetime import Backoff
from translator_bot.errors import ProviderUnavailableError


class LaneHealth:
    def __init__(self, where: str, *, give_up_after_s: float, healthy_after_s: float) -> None:
        self.where = where
        self.give_up_after_s = give_up_after_s
        self.healthy_after_s = healthy_after_s
        self.backoff = Backoff()  # one per lane: kept across drops, reset only by a healthy link
        self.lost_since: float | None = None  # loop time the lane last lost a working link
        self.outage: Outage | None = None

    @property
    def recovering(self) -> bool:
        return self.outage is not None or self.lost_since is not None

    def proven_by_time(self, activated_at: float, now: float) -> bool:
        return now - activated_at >= self.healthy_after_s

    def recovered(self) -> Outage | None:
        """A link proved the provider works: any outage is over (returned) and the backoff starts afresh."""
        self.backoff.reset()
        self.lost_since = None
        outage, self.outage = self.outage, None
        return outage

    def lost(self, now: float, *, healthy: bool, reason: str, wall: float) -> None:
        """The serving link ended; `healthy`: it had proved itself before it went."""
        if healthy:
            self.backoff.reset()
            self.lost_since = now
            return
        if self.lost_since is None:
            self.lost_since = now
        # Up and gone again before it proved anything: the provider is not really back.
        self.degraded(now, reason, wall)

    def degraded(self, now: float, reason: str, wall: float) -> None:
        """A connection attempt failed or a link did not stay up: the lane is in an outage."""
        if self.outage is None:
            since = self.lost_since if self.lost_since is not None else now
            self.outage = Outage(since, wall - (now - since), reason)
        else:
            self.outage.reason = reason
        self.outage.attempts += 1

    def attempt_failed(
        self, now: float, reason: str, wall: float, *, covered: bool, after_serving: bool
    ) -> float:
        """A connection attempt failed; `covered`: a link still serves meanwhile (a recycle), so it is
        no outage; `after_serving`: one was serving when the attempt began. Raises
        ProviderUnavailableError once the outage is too long; else returns the wait before the next."""
        if not covered:
            if self.lost_since is None and after_serving:
                self.lost_since = now
            self.degraded(now, reason, wall)
            self.check(now)
        return self.backoff.next_delay()

    def time_left(self, now: float) -> float | None:
        """Seconds until an ongoing outage is too long; None when there is none."""
        if self.outage is None:
            return None
        return max(0.0, self.outage.since + self.give_up_after_s - now)

    def check(self, now: float) -> None:
        """Raise ProviderUnavailableError once the outage has lasted longer than allowed."""
        outage = self.outage
        if outage is not None and now - outage.since >= self.give_up_after_s:
            raise ProviderUnavailableError(
                f"the model provider at {self.where} has been unavailable for "
                f"{now - outage.since:.0f} s, longer than the {self.give_up_after_s:.0f} s allowed "
                f"(TRANSLATOR_PROVIDER_OUTAGE_SECONDS); last error: {outage.reason}"
            )
