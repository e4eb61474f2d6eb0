"""The STUN client retransmission schedule of RFC 8489 §6.2.1, as a pure object.

No clock and no socket: the owner passes ``now`` and sends the request itself. With the defaults
(RTO 500 ms, Rc 7, Rm 16) a request is sent at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, and
the transaction fails at 39500 ms: after the last send the client waits Rm times the *initial*
RTO, as in the RFC's worked example.

Over a reliable transport (TCP, TLS) RFC 8489 §6.2.2 sends once and waits 39.5 s: use
``RetransmissionSchedule(now, rto=0.5, rc=1, rm=79)``.
"""

from __future__ import annotations

__all__ = ["RetransmissionSchedule"]


class RetransmissionSchedule:
    """When to retransmit one request and when to give up.

    Drive it with ``if now >= schedule.get_timer: resend = schedule.on_timeout(now)``.
    """

    __slots__ = (
        "_initial_rto",
        "_interval",
        "_max_rto",
        "_next",
        "_rc",
        "_rm",
        "attempts",
        "done",
        "failed",
    )

    def __init__(
        self,
        now: float,
        *,
        rto: float = 0.5,
        rc: int = 7,
        rm: int = 16,
        max_rto: float | None = None,
    ) -> None:
        if not rto > 0:
            raise ValueError(f"rto must be positive, got {rto!r}")
        if rc < 1 or rm < 1:
            raise ValueError(f"rc and rm must be at least 1, got rc={rc!r} rm={rm!r}")
        if max_rto is not None and not max_rto > 0:
            raise ValueError(f"max_rto must be positive, got {max_rto!r}")
        self._initial_rto = rto
        self._max_rto = max_rto
        self._interval = rto if max_rto is None else min(rto, max_rto)
        self._rc = rc
        self._rm = rm
        self.attempts = 1
        self.done = False
        self.failed = False
        self._next: float | None = now + self._wait_after_send()

    def _wait_after_send(self) -> float:
        if self.attempts >= self._rc:
            return self._rm * self._initial_rto
        return self._interval

    @property
    def get_timer(self) -> float | None:
        """Absolute time of the next retransmission or of giving up; None once done or failed."""
        return self._next

    def is_due(self, now: float) -> bool:
        return self._next is not None and now >= self._next

    def on_timeout(self, now: float) -> bool:
        """The timer fired: True means send the request again now (the schedule has advanced).

        False means there is nothing to send: either the transaction has just failed (``failed``
        is now True) or it had already ended. Call it only once ``now >= get_timer``: an
        early call is taken as the timer firing.
        """
        if self._next is None:
            return False
        if self.attempts >= self._rc:
            self.failed = True
            self._next = None
            return False
        self.attempts += 1
        # RFC 8489 §6.2.1: the RTO doubles after each retransmission, optionally capped.
        self._interval *= 2
        if self._max_rto is not None and self._interval > self._max_rto:
            self._interval = self._max_rto
        self._next = now + self._wait_after_send()
        return True

    def complete(self) -> None:
        """A response arrived: no more retransmissions, no failure."""
        self.done = True
        self._next = None
