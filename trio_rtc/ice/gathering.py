"""Candidate gathering for the ICE agent core: host candidates for each local socket and
server-reflexive ones from STUN Binding requests (RFC 8445 §5.1.1), as a mix-in of IceAgent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..stun import Attr, MessageClass, Method, RetransmissionSchedule, StunMessage
from .candidate import Candidate, candidate_foundation, candidate_priority
from .pairs import Address, GatheringStateChanged, IceEvent, ServerError
from .session import Generation, Transaction

__all__ = ["GatheringMixin"]


class GatheringMixin:
    """Gathering state and STUN-server transactions; the agent supplies these attributes."""

    stun_servers: list[Address]
    gather_rto: float
    gather_attempts: int
    _bases: dict[Address, int]
    #: relayed addresses (TURN allocations held by the driver): base -> (mapped address, server URL)
    _relays: dict[Address, tuple[Address | None, str]]
    _transactions: dict[bytes, Transaction]
    _outbox: list[tuple[bytes, Address, Address]]
    _events: list[IceEvent]
    _hosts_done: bool

    if TYPE_CHECKING:

        def _add_local_candidate(
            self, gen: Generation, candidate: Candidate, now: float
        ) -> None: ...

    def _gather_from_base(self, gen: Generation, base: Address, now: float) -> None:
        if gen.gathering_state == "new":
            self._set_gathering_state(gen, "gathering")
        preference = self._bases[base]
        relay = self._relays.get(base)
        if relay is not None:
            # RFC 8445 §5.1.1.2: a relayed candidate's base is itself; related = mapped address.
            mapped, relay_server = relay
            self._add_local_candidate(
                gen,
                Candidate(
                    foundation=candidate_foundation("relay", "udp", base[0], relay_server),
                    component=1,
                    transport="udp",
                    priority=candidate_priority("relay", preference),
                    host=base[0],
                    port=base[1],
                    type="relay",
                    related_address=mapped[0] if mapped else None,
                    related_port=mapped[1] if mapped else None,
                    server_url=relay_server,
                ),
                now,
            )
            return
        family_v6 = ":" in base[0]
        host = Candidate(
            foundation=candidate_foundation("host", "udp", base[0]),
            component=1,
            transport="udp",
            priority=candidate_priority("host", preference),
            host=base[0],
            port=base[1],
            type="host",
        )
        self._add_local_candidate(gen, host, now)
        for server in self.stun_servers:
            if (":" in server[0]) != family_v6:
                continue
            request = StunMessage.request(Method.BINDING)
            data = request.encode(fingerprint=True)
            self._transactions[request.transaction_id] = Transaction(
                transaction_id=request.transaction_id,
                kind="gather",
                request=data,
                base=base,
                destination=server,
                sent_at=now,
                generation=gen,
                schedule=RetransmissionSchedule(
                    now, rto=self.gather_rto, rc=self.gather_attempts, rm=self.gather_attempts
                ),
                server=_stun_url(server),
            )
            gen.gather_pending += 1
            self._outbox.append((data, base, server))

    def _handle_gather_response(
        self, transaction: Transaction, message: StunMessage, now: float
    ) -> None:
        gen = transaction.generation
        gen.gather_pending -= 1
        if transaction.schedule is not None:
            transaction.schedule.complete()
        mapped = message.get_address(Attr.XOR_MAPPED_ADDRESS) or message.get_address(
            Attr.MAPPED_ADDRESS
        )
        if message.message_class == MessageClass.ERROR or mapped is None:
            code, reason = message.error_code or (700, "no mapped address in the response")
            self._events.append(
                ServerError(
                    address=transaction.base[0],
                    port=transaction.base[1],
                    url=transaction.server,
                    error_code=code,
                    error_text=reason,
                )
            )
        elif mapped != transaction.base and not any(
            (c.host, c.port) == mapped and c.type == "srflx" for c in gen.local_candidates
        ):
            base = transaction.base
            srflx = Candidate(
                foundation=candidate_foundation(
                    "srflx", "udp", base[0], transaction.destination[0]
                ),
                component=1,
                transport="udp",
                priority=candidate_priority("srflx", self._bases.get(base, 65535)),
                host=mapped[0],
                port=mapped[1],
                type="srflx",
                related_address=base[0],
                related_port=base[1],
                server_url=transaction.server,
            )
            # Never paired: its base (a host candidate) already is (RFC 8445 §6.1.2.4).
            self._add_local_candidate(gen, srflx, now)
        self._maybe_gathering_complete(gen)

    def _maybe_gathering_complete(self, gen: Generation) -> None:
        if self._hosts_done and gen.gather_pending <= 0 and gen.gathering_state == "gathering":
            self._set_gathering_state(gen, "complete")

    def _set_gathering_state(self, gen: Generation, state: str) -> None:
        gen.gathering_state = state
        self._events.append(GatheringStateChanged(state, gen.local_ufrag))


def _stun_url(server: Address) -> str:
    host = f"[{server[0]}]" if ":" in server[0] else server[0]
    return f"stun:{host}:{server[1]}"
