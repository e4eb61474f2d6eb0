"""Retransmission timer (RFC 6298 as adopted by RFC 9260 §6.3.1) and congestion window
(RFC 9260 §7.2). Pure arithmetic: the association owns the timers and passes ``now``."""

from __future__ import annotations

__all__ = ["CongestionControl", "RtoEstimator"]


class RtoEstimator:
    """Smoothed RTT, RTT variance and the retransmission timeout with exponential backoff."""

    __slots__ = ("rto", "rto_initial", "rto_max", "rto_min", "rttvar", "srtt")

    def __init__(self, *, rto_initial: float, rto_min: float, rto_max: float) -> None:
        self.rto_initial = rto_initial
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.rto = rto_initial
        self.srtt: float | None = None
        self.rttvar = 0.0

    def measure(self, rtt: float) -> None:
        """Feed one RTT sample taken from a chunk sent once (Karn's rule, RFC 9260 §6.3.1 C4)."""
        if rtt < 0:
            return
        if self.srtt is None:
            # C2: first measurement.
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            # C3 with alpha = 1/8 and beta = 1/4; RTTVAR uses the previous SRTT.
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        # G (clock granularity) is zero: our clock is a float.
        self.rto = min(max(self.srtt + 4 * self.rttvar, self.rto_min), self.rto_max)

    def reset_backoff(self) -> None:
        """New data was acknowledged: return from a backed-off RTO to the computed one.

        RFC 6298 keeps the backed-off value until the next RTT sample, but Karn's rule forbids
        samples from retransmitted chunks, and after a timeout everything outstanding *is*
        retransmitted; under heavy loss the RTO then stays at its maximum for a long time. Like
        Linux TCP, we drop the backoff once the cumulative ack point moves.
        """
        if self.srtt is not None:
            self.rto = min(max(self.srtt + 4 * self.rttvar, self.rto_min), self.rto_max)

    def back_off(self) -> None:
        """E2: double the RTO after a retransmission timeout."""
        self.rto = min(self.rto * 2, self.rto_max)


class CongestionControl:
    """cwnd / ssthresh / partial_bytes_acked with fast recovery (RFC 9260 §7.2)."""

    __slots__ = (
        "cwnd",
        "fast_recovery_exit",
        "in_fast_recovery",
        "mtu",
        "partial_bytes_acked",
        "ssthresh",
    )

    def __init__(self, *, mtu: int, peer_rwnd: int) -> None:
        self.mtu = mtu
        # §7.2.1: initial cwnd = min(4 * MTU, max(2 * MTU, 4380)); ssthresh = peer's a_rwnd.
        self.cwnd = min(4 * mtu, max(2 * mtu, 4380))
        self.ssthresh = max(peer_rwnd, 4 * mtu)
        self.partial_bytes_acked = 0
        self.in_fast_recovery = False
        self.fast_recovery_exit = 0

    def on_cumulative_ack(
        self, acked_bytes: int, flight_size_before: int, cumulative_tsn: int
    ) -> None:
        """Grow cwnd when the cumulative ack point advanced (§7.2.1, §7.2.2)."""
        if self.in_fast_recovery:
            if cumulative_tsn >= self.fast_recovery_exit:
                self.in_fast_recovery = False
            else:
                # §7.2.4: no cwnd growth while in fast recovery.
                return
        if acked_bytes <= 0:
            return
        if self.cwnd <= self.ssthresh:
            # Slow start, only when the window was fully used (RFC 9260 §7.2.1). §7.2.1 caps the
            # growth at one MTU per SACK, which assumes a SACK for every second packet; a
            # receiver that acknowledges a whole burst with one SACK (ours does when a burst
            # arrives in one batch) would make slow start nearly linear. So bytes are counted,
            # as RFC 3465 does for TCP, up to half the bytes acknowledged: the growth SACKs for
            # every second packet would have given (1.5x per round trip), never more.
            if flight_size_before >= self.cwnd:
                self.cwnd += max(min(acked_bytes, self.mtu), acked_bytes >> 1)
        else:
            self.partial_bytes_acked += acked_bytes
            if self.partial_bytes_acked >= self.cwnd and flight_size_before >= self.cwnd:
                self.partial_bytes_acked -= self.cwnd
                self.cwnd += self.mtu

    def on_fast_retransmit(self, highest_outstanding_tsn: int) -> bool:
        """Enter fast recovery (§7.2.4). Returns False when already in it (no further cut)."""
        if self.in_fast_recovery:
            return False
        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
        self.cwnd = self.ssthresh
        self.partial_bytes_acked = 0
        self.in_fast_recovery = True
        self.fast_recovery_exit = highest_outstanding_tsn
        return True

    def on_retransmission_timeout(self) -> None:
        """§7.2.3: collapse to one MTU and leave fast recovery."""
        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
        self.cwnd = self.mtu
        self.partial_bytes_acked = 0
        self.in_fast_recovery = False
