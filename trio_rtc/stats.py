"""``getStats()``: an RTCStatsReport with the standard stats types that exist without media
(webrtc-stats §2, §8): ``peer-connection``, ``transport``, ``candidate-pair``,
``local-candidate``, ``remote-candidate``, ``certificate`` and ``data-channel``.

The report is a read-only mapping from stats id to a plain dict whose keys are the spec's member
names (``bytesSent``, ``selectedCandidatePairId``, …), as a browser's ``report.get(id)`` gives.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .dtls.certificate import RTCCertificate, certificate_fingerprint
from .dtls.crypto import CipherSuite
from .dtls.driver import RTCDtlsTransport
from .ice.candidate import Candidate
from .ice.pairs import CandidatePair, PairState
from .ice.transport import RTCIceTransport

__all__ = ["RTCStatsReport", "collect_stats"]

Stats = dict[str, Any]

_PAIR_STATES = {
    PairState.FROZEN: "frozen",
    PairState.WAITING: "waiting",
    PairState.IN_PROGRESS: "in-progress",
    PairState.SUCCEEDED: "succeeded",
    PairState.FAILED: "failed",
}


class RTCStatsReport(Mapping[str, Stats]):
    """A maplike of stats id -> stats dict (webrtc-pc §8.3)."""

    def __init__(self, stats: Mapping[str, Stats]) -> None:
        self._stats = dict(stats)

    def __getitem__(self, key: str) -> Stats:
        return self._stats[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stats)

    def __len__(self) -> int:
        return len(self._stats)

    def of_type(self, type: str) -> list[Stats]:
        """Every stats dict whose ``type`` is ``type`` (a trio_rtc convenience)."""
        return [s for s in self._stats.values() if s["type"] == type]

    def __repr__(self) -> str:
        return f"<RTCStatsReport {sorted(self._stats)}>"


def _candidate_id(prefix: str, candidate: Candidate) -> str:
    return f"{prefix}_{candidate.foundation}_{candidate.host}_{candidate.port}"


def _candidate_stats(
    prefix: str, candidate: Candidate, transport_id: str, timestamp: float, ufrag: str | None
) -> Stats:
    return {
        "id": _candidate_id(prefix, candidate),
        "type": "local-candidate" if prefix == "IL" else "remote-candidate",
        "timestamp": timestamp,
        "transportId": transport_id,
        "address": candidate.host,
        "port": candidate.port,
        "protocol": candidate.transport,
        "candidateType": candidate.type,
        "priority": candidate.priority,
        "foundation": candidate.foundation,
        "usernameFragment": ufrag,
        "relatedAddress": candidate.related_address,
        "relatedPort": candidate.related_port,
        "tcpType": candidate.tcptype,
        "url": None,
        "relayProtocol": None,
    }


def _pair_stats(
    pair: CandidatePair,
    transport_id: str,
    timestamp: float,
    *,
    selected: bool,
    ice: RTCIceTransport,
) -> Stats:
    stats: Stats = {
        "id": f"CP_{_candidate_id('IL', pair.local)}_{_candidate_id('IR', pair.remote)}",
        "type": "candidate-pair",
        "timestamp": timestamp,
        "transportId": transport_id,
        "localCandidateId": _candidate_id("IL", pair.local),
        "remoteCandidateId": _candidate_id("IR", pair.remote),
        "state": _PAIR_STATES.get(pair.state, str(pair.state)),
        "nominated": pair.nominated,
        "priority": pair.priority,
        "requestsSent": pair.requests_sent,
        "requestsReceived": pair.requests_received,
        "responsesSent": pair.responses_sent,
        "responsesReceived": pair.responses_received,
        "consentRequestsSent": pair.consent_requests_sent,
        "totalRoundTripTime": pair.total_round_trip_time,
        "currentRoundTripTime": pair.current_round_trip_time,
    }
    # Data-path counters are kept per transport; they belong to the pair that carries the data.
    data = ice.stats if selected else None
    stats["packetsSent"] = data.packets_sent if data else 0
    stats["packetsReceived"] = data.packets_received if data else 0
    stats["bytesSent"] = data.bytes_sent if data else 0
    stats["bytesReceived"] = data.bytes_received if data else 0
    return stats


def _certificate_stats(der: bytes, prefix: str, timestamp: float) -> Stats:
    fingerprint = certificate_fingerprint(der, "sha-256")
    return {
        "id": f"{prefix}_{fingerprint.value.replace(':', '')[:16]}",
        "type": "certificate",
        "timestamp": timestamp,
        "fingerprint": fingerprint.value,
        "fingerprintAlgorithm": fingerprint.algorithm,
        "base64Certificate": base64.b64encode(der).decode("ascii"),
    }


def collect_stats(
    *,
    ice: RTCIceTransport | None,
    ice_in_use: bool,
    dtls: RTCDtlsTransport | None,
    certificate: RTCCertificate | None,
    sctp: Any,
    channels: Sequence[Any],
) -> RTCStatsReport:
    """Build the report from the transports of one peer connection."""
    timestamp = time.time() * 1000.0
    report: dict[str, Stats] = {}
    opened = sctp.data_channels_opened if sctp is not None else 0
    closed = sctp.data_channels_closed if sctp is not None else 0
    report["P"] = {
        "id": "P",
        "type": "peer-connection",
        "timestamp": timestamp,
        "dataChannelsOpened": opened,
        "dataChannelsClosed": closed,
    }
    local_cert_id = remote_cert_id = None
    if certificate is not None:
        local = _certificate_stats(certificate.der, "CF", timestamp)
        report[local["id"]] = local
        local_cert_id = local["id"]
    if dtls is not None:
        for der in dtls.getRemoteCertificates():
            remote = _certificate_stats(der, "CFR", timestamp)
            report[remote["id"]] = remote
            remote_cert_id = remote["id"]
    if ice is not None and ice_in_use:
        transport_id = "T01"
        agent = ice.agent
        selected = ice.selected_pair
        selected_id = None
        local_ufrag = ice.getLocalParameters().usernameFragment
        remote_params = ice.getRemoteParameters()
        for candidate in agent.local_candidates:
            stats = _candidate_stats("IL", candidate, transport_id, timestamp, local_ufrag)
            report[stats["id"]] = stats
        for candidate in agent.remote_candidates:
            stats = _candidate_stats(
                "IR",
                candidate,
                transport_id,
                timestamp,
                remote_params.usernameFragment if remote_params else None,
            )
            report[stats["id"]] = stats
        pairs = list(agent.pairs)
        if selected is not None and selected not in pairs:
            pairs.append(selected)  # still carrying data during an ICE restart
        for pair in pairs:
            for prefix, candidate in (("IL", pair.local), ("IR", pair.remote)):
                key = _candidate_id(prefix, candidate)
                if key not in report:
                    ufrag = local_ufrag if prefix == "IL" else None
                    report[key] = _candidate_stats(
                        prefix, candidate, transport_id, timestamp, ufrag
                    )
            stats = _pair_stats(pair, transport_id, timestamp, selected=pair is selected, ice=ice)
            report[stats["id"]] = stats
            if pair is selected:
                selected_id = stats["id"]
        data = ice.stats
        handshake = dtls.handshake_complete if dtls is not None else None
        transport: Stats = {
            "id": transport_id,
            "type": "transport",
            "timestamp": timestamp,
            "packetsSent": data.packets_sent,
            "packetsReceived": data.packets_received,
            "bytesSent": data.bytes_sent,
            "bytesReceived": data.bytes_received,
            "iceRole": ice.role,
            "iceLocalUsernameFragment": local_ufrag,
            "iceState": ice.state,
            "dtlsState": dtls.state if dtls is not None else "new",
            "dtlsRole": (
                "unknown" if dtls is None else ("client" if dtls.core.is_client else "server")
            ),
            "selectedCandidatePairId": selected_id,
            "localCertificateId": local_cert_id,
            "remoteCertificateId": remote_cert_id,
        }
        if handshake is not None:
            transport["tlsVersion"] = "FEFD"  # DTLS 1.2 on the wire
            transport["dtlsCipher"] = _cipher_name(handshake.cipher_suite)
            if handshake.srtp_profile is not None:
                transport["srtpCipher"] = handshake.srtp_profile.name
        report[transport_id] = transport
    for index, channel in enumerate(channels):
        stats = dict(channel.stats())
        stats["id"] = f"D{index}"
        stats["timestamp"] = timestamp
        report[stats["id"]] = stats
    return RTCStatsReport(report)


def _cipher_name(suite: int) -> str:
    try:
        return f"TLS_{CipherSuite(suite).name}"
    except ValueError:
        return f"0x{suite:04X}"
