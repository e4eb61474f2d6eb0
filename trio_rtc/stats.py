"""``getStats()``: an RTCStatsReport with the standard stats types (webrtc-stats §2, §8):
``peer-connection``, ``transport``, ``candidate-pair``, ``local-candidate``,
``remote-candidate``, ``certificate``, ``data-channel`` and, once media flows, ``inbound-rtp``,
``outbound-rtp``, ``remote-inbound-rtp``, ``remote-outbound-rtp``, ``codec``, ``media-source``
and ``media-playout``.

The report is a read-only mapping from stats id to a plain dict whose keys are the spec's member
names (``bytesSent``, ``selectedCandidatePairId``, …), as a browser's ``report.get(id)`` gives.
Members whose value this stack cannot know (the codec members of a track sent or read as
encoded frames, which nothing here encodes or decodes) are left out rather than filled with
guesses; ``docs/media.md`` lists them. ``media-playout`` is
reported for a remote audio track read with ``recv()``: the application is the playout device,
so it counts the decoded samples ``recv()`` handed over and how long they waited since their
packet arrived.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .dtls.certificate import RTCCertificate, certificate_fingerprint
from .dtls.crypto import CipherSuite
from .dtls.driver import RTCDtlsTransport
from .exceptions import InvalidAccessError
from .ice.candidate import Candidate
from .ice.pairs import CandidatePair, PairState
from .ice.transport import RTCIceTransport
from .rtp.ntp import ntp_to_seconds

if TYPE_CHECKING:
    from .jsep.codecs import NegotiatedCodec
    from .pc.media import MediaSide

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
    channel_numbers: Mapping[Any, int] | None = None,
    media: MediaSide | None = None,
    selector: Any = None,
) -> RTCStatsReport:
    """Build the report from the transports of one peer connection.

    ``selector``: None for everything, or a MediaStreamTrack of one of ``media``'s senders or
    receivers: then only that sender's (or receiver's) RTP stream stats and every stats object
    they reference, directly or indirectly (webrtc-pc §8.2 stats selection algorithm).
    InvalidAccessError for anything else, or a track more than one sender or receiver has."""
    roots = _selected_streams(media, selector)
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
            rtp = media.rtp if media is not None else None
            if pair is selected and rtp is not None and rtp.available_outgoing_bitrate:
                # The bandwidth estimate of congestion control (transport-wide CC or REMB).
                stats["availableOutgoingBitrate"] = rtp.available_outgoing_bitrate
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
            "selectedCandidatePairChanges": ice.selected_pair_changes,
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
        # A channel's number, given when the connection first listed it, stays its id.
        number = channel_numbers.get(channel, index) if channel_numbers is not None else index
        stats["id"] = f"D{number}"
        stats["timestamp"] = timestamp
        report[stats["id"]] = stats
    selected_ids: set[str] = set()
    if media is not None and media.rtp is not None and ice is not None and ice_in_use:
        transport_id = "T01"
        for w3c in media.transceivers():
            for stats in _sender_stats(w3c.sender, media, transport_id, timestamp):
                report[stats["id"]] = stats
                if roots is not None and w3c.sender in roots and stats["type"] == "outbound-rtp":
                    selected_ids.add(stats["id"])
            for stats in _receiver_stats(w3c.receiver, media, transport_id, timestamp):
                report[stats["id"]] = stats
                if roots is not None and w3c.receiver in roots and stats["type"] == "inbound-rtp":
                    selected_ids.add(stats["id"])
    if roots is not None:
        return RTCStatsReport(_referenced(report, selected_ids))
    return RTCStatsReport(report)


def _cipher_name(suite: int) -> str:
    try:
        return f"TLS_{CipherSuite(suite).name}"
    except ValueError:
        return f"0x{suite:04X}"


# --- media (webrtc-stats §8.2-§8.9) ---------------------------------------------------------------


def _selected_streams(media: MediaSide | None, selector: Any) -> set[Any] | None:
    """None for no selector; else the one sender or receiver whose track is ``selector``."""
    if selector is None:
        return None
    from .media.tracks import MediaStreamTrack  # media imports this module: import lazily

    if isinstance(selector, MediaStreamTrack) and media is not None:
        matches: list[Any] = []
        for w3c in media.transceivers():
            if w3c.sender.track is selector:
                matches.append(w3c.sender)
            if w3c.receiver.track is selector:
                matches.append(w3c.receiver)
        if len(matches) == 1:
            return set(matches)
        if matches:
            raise InvalidAccessError(
                f"getStats(): track {selector.id} is sent by more than one sender; "
                "call getStats() on the RTCRtpSender instead"
            )
    raise InvalidAccessError(f"getStats(): {selector!r} is not a track of this connection")


def _referenced(report: Mapping[str, Stats], roots: set[str]) -> dict[str, Stats]:
    """``roots`` and every stats object they reference through an ``…Id`` member, transitively
    (webrtc-pc §8.2: "all stats objects referenced directly or indirectly")."""
    keep: dict[str, Stats] = {}
    todo = sorted(roots)
    while todo:
        key = todo.pop()
        if key in keep or key not in report:
            continue
        stats = keep[key] = report[key]
        for name, value in stats.items():
            if name.endswith("Id") and isinstance(value, str) and value not in keep:
                todo.append(value)
    return keep


def _wallclock_ms(monotonic: float) -> float:
    """A time on trio's clock (as the RTP task stamps packets) as wall-clock ms."""
    return (time.time() - (trio.current_time() - monotonic)) * 1000.0


def _codec_stats(codec: NegotiatedCodec, kind: str, transport_id: str, timestamp: float) -> Stats:
    stats: Stats = {
        "id": f"C{transport_id}_{codec.payload_type}",
        "type": "codec",
        "timestamp": timestamp,
        "transportId": transport_id,
        "payloadType": codec.payload_type,
        "mimeType": f"{kind}/{codec.name}",
        "clockRate": codec.clock_rate,
    }
    if codec.channels is not None:
        stats["channels"] = codec.channels
    fmtp = codec.to_sdp().fmtp
    if fmtp:
        stats["sdpFmtpLine"] = fmtp
    return stats


def _codec_counters(stats: Stats, counters: Any, kind: str, done: str, doing: str) -> None:
    """The encoder's or decoder's counters (webrtc-stats §8.2 framesDecoded…, §8.4
    framesEncoded…) when raw frames are coded here."""
    if counters is None:
        return
    if kind == "video":
        stats[f"frames{done}"] = counters.frames
        stats[f"keyFrames{done}"] = counters.keyframes
        if counters.width is not None:
            stats["frameWidth"] = counters.width
            stats["frameHeight"] = counters.height
        fps = counters.frames_per_second()
        if fps is not None:
            stats["framesPerSecond"] = fps
        if counters.qp_frames:
            stats["qpSum"] = counters.qp_sum
    stats[f"total{doing}Time"] = counters.total_time
    if counters.errors:
        stats[f"{doing.lower()}Errors"] = counters.errors  # trio_rtc addition


def _sender_stats(
    sender: Any, media: MediaSide, transport_id: str, timestamp: float
) -> list[Stats]:
    """``outbound-rtp`` (with its ``codec``, ``media-source`` and, once the peer reported on
    the stream, ``remote-inbound-rtp``) of a sender whose run_sender task runs; one per
    simulcast layer (with its ``rid``) when it sends several."""
    layers = sender._rtp_layers or [sender._rtp_sender]
    out: list[Stats] = []
    seen: set[str] = set()
    for rtp in layers:
        for stats in _stream_stats(sender, rtp, media, transport_id, timestamp):
            if stats["id"] not in seen:  # the codec and media source are shared by layers
                seen.add(stats["id"])
                out.append(stats)
    return out


def _stream_stats(
    sender: Any, rtp: Any, media: MediaSide, transport_id: str, timestamp: float
) -> list[Stats]:
    mid = sender._mid
    if rtp is None or rtp.transport is not media.rtp:
        return []
    kind = sender.kind
    s = rtp.statistics
    out: list[Stats] = []
    outbound_id = f"OT{mid}_{rtp.ssrc}"
    outbound: Stats = {
        "id": outbound_id,
        "type": "outbound-rtp",
        "timestamp": timestamp,
        "ssrc": rtp.ssrc,
        "kind": kind,
        "mid": mid,
        "transportId": transport_id,
        "packetsSent": s.packets_sent,
        "bytesSent": s.octets_sent,
        "headerBytesSent": s.header_octets_sent,
        "retransmittedPacketsSent": s.retransmitted_packets_sent,
        "retransmittedBytesSent": s.retransmitted_bytes_sent,
        "nackCount": rtp.nacks_received,
        "pliCount": rtp.pli_received,
        "firCount": rtp.fir_received,
        "active": bool(sender._encodings and sender._encodings[0].active),
    }
    if rtp.rid is not None:
        outbound["rid"] = rtp.rid
        encoding = next((e for e in sender._encodings if e.rid == rtp.rid), None)
        # A layer congestion control paused sends nothing, as an inactive one.
        outbound["active"] = bool(encoding and encoding.active) and rtp.target_bitrate != 0
    if rtp.target_bitrate is not None:
        outbound["targetBitrate"] = rtp.target_bitrate
    if kind == "video":
        outbound["framesSent"] = sender.frames_sent
        adaptation = sender.adaptation
        if adaptation is not None:
            outbound["qualityLimitationReason"] = adaptation.reason
            outbound["qualityLimitationDurations"] = dict(adaptation.durations)
            outbound["qualityLimitationResolutionChanges"] = adaptation.resolution_changes
    _codec_counters(outbound, sender.encode_stats, kind, "Encoded", "Encode")
    codec = sender._sending_codec
    if codec is not None:
        codec_stats = _codec_stats(codec, kind, transport_id, timestamp)
        outbound["codecId"] = codec_stats["id"]
        out.append(codec_stats)
    track = sender.track
    if track is not None:
        source_id = f"SO_{track.id}"
        outbound["mediaSourceId"] = source_id
        source: Stats = {
            "id": source_id,
            "type": "media-source",
            "timestamp": timestamp,
            "trackIdentifier": track.id,
            "kind": track.kind,
        }
        if track.kind == "video" and track.source is not None:
            source["frames"] = track.source.frames_sent  # frames the application handed us
        out.append(source)
    if s.round_trip_time_measurements:
        # The peer's report blocks about this SSRC (RFC 3550 §6.4.1); until one echoed an SR
        # of ours (the RTT), there is no telling a report block of zeros from none.
        remote_id = f"RI{mid}_{rtp.ssrc}"
        outbound["remoteId"] = remote_id
        remote: Stats = {
            "id": remote_id,
            "type": "remote-inbound-rtp",
            "timestamp": timestamp,
            "ssrc": rtp.ssrc,
            "kind": kind,
            "transportId": transport_id,
            "localId": outbound_id,
            "packetsLost": s.remote_packets_lost,
            "fractionLost": s.remote_fraction_lost / 256.0,
            "jitter": s.remote_jitter / s.clock_rate,
            "roundTripTime": s.round_trip_time,
            "totalRoundTripTime": s.total_round_trip_time,
            "roundTripTimeMeasurements": s.round_trip_time_measurements,
        }
        if "codecId" in outbound:
            remote["codecId"] = outbound["codecId"]
        out.append(remote)
    out.append(outbound)
    return out


def _receiver_stats(
    receiver: Any, media: MediaSide, transport_id: str, timestamp: float
) -> list[Stats]:
    """``inbound-rtp`` per remote SSRC of the receiver's mid (with its ``codec`` and, once
    the peer sent an SR, ``remote-outbound-rtp``)."""
    rtp = media.rtp
    mid = receiver._mid
    if rtp is None or mid is None or receiver._rtp_transport is not rtp:
        return []
    kind = receiver.kind
    negotiated = receiver._negotiated
    out: list[Stats] = []
    for ssrc, s in list(rtp.inbound.items()):
        if rtp._inbound_mid.get(ssrc) != mid or rtp._is_repair(ssrc):
            continue
        inbound_id = f"IT{mid}_{ssrc}"
        nack = rtp._nack.get(ssrc)
        inbound: Stats = {
            "id": inbound_id,
            "type": "inbound-rtp",
            "timestamp": timestamp,
            "ssrc": ssrc,
            "kind": kind,
            "mid": mid,
            "transportId": transport_id,
            "trackIdentifier": receiver.track.id,
            # Every packet the RTP task took for this SSRC, the ones RFC 3550 A.1 keeps out of
            # its loss statistics (probation, far out of sequence) included.
            "packetsReceived": s.packets_received + s.packets_discarded,
            "bytesReceived": s.bytes_received,
            "headerBytesReceived": s.header_bytes_received,
            "packetsLost": s.packets_lost,
            "jitter": s.jitter_estimate / s.clock_rate,
            "nackCount": nack.counters.nack_packets if nack is not None else 0,
            "firCount": 0,  # key frames are asked for with PLI only
            "pliCount": receiver.keyframe_requests_sent,
            "retransmittedPacketsReceived": s.retransmitted_packets_received,
            "retransmittedBytesReceived": s.retransmitted_bytes_received,
        }
        held = receiver._jitter_buffer.get(ssrc)
        if held is not None and kind == "video":
            inbound["jitterBufferDelay"], inbound["jitterBufferEmittedCount"] = held
        if s.last_packet_received_at is not None:
            inbound["lastPacketReceivedTimestamp"] = _wallclock_ms(s.last_packet_received_at)
        counts = receiver.frame_counts.get(ssrc)
        decoded = receiver.decode_stats
        if kind == "video":
            inbound["framesReceived"] = counts.received if counts else 0
            if decoded is None:
                # Not decoded here (read as encoded frames): "decoded" counts the complete
                # frames the track took.
                inbound["framesDecoded"] = counts.delivered if counts else 0
                inbound["keyFramesDecoded"] = counts.keyframes_delivered if counts else 0
        _codec_counters(inbound, decoded, kind, "Decoded", "Decode")
        if kind == "video" and decoded is not None:
            inbound["freezeCount"] = decoded.freeze_count
            inbound["totalFreezesDuration"] = decoded.total_freezes_duration
            inbound["pauseCount"] = decoded.pause_count
            inbound["totalPausesDuration"] = decoded.total_pauses_duration
            inbound["totalInterFrameDelay"] = decoded.total_inter_frame_delay
            inbound["totalSquaredInterFrameDelay"] = decoded.total_squared_inter_frame_delay
        if kind == "audio":
            # trio_rtc addition: Opus frames rebuilt from RED (RFC 2198) redundancy because
            # their own packet was lost. webrtc-stats has no member for it: fecPacketsReceived
            # and fecPacketsDiscarded count FEC packets, not what they repaired.
            inbound["redFramesRecovered"] = receiver.red_frames_recovered.get(ssrc, 0)
        if kind == "audio" and decoded is not None:
            inbound["totalSamplesReceived"] = decoded.samples
            inbound["concealedSamples"] = 0
            buffer = decoded.jitter_buffer
            if buffer is not None:
                # The playout buffer's view (webrtc-stats §8.6): concealment counts what it
                # synthesized for lost packets; totalSamplesReceived includes those.
                inbound["totalSamplesReceived"] = buffer.total_samples_received
                inbound["concealedSamples"] = buffer.concealed_samples
                inbound["silentConcealedSamples"] = buffer.silent_concealed_samples
                inbound["concealmentEvents"] = buffer.concealment_events
                inbound["insertedSamplesForDeceleration"] = buffer.inserted_samples_for_deceleration
                inbound["removedSamplesForAcceleration"] = buffer.removed_samples_for_acceleration
                inbound["jitterBufferDelay"] = buffer.jitter_buffer_delay
                inbound["jitterBufferTargetDelay"] = buffer.jitter_buffer_target_delay
                inbound["jitterBufferMinimumDelay"] = buffer.jitter_buffer_minimum_delay
                inbound["jitterBufferEmittedCount"] = buffer.jitter_buffer_emitted_count
                inbound["packetsDiscarded"] = buffer.packets_discarded
            playout = receiver.track.playout
            playout_id = f"AP{mid}"
            inbound["playoutId"] = playout_id
            out.append(
                {
                    "id": playout_id,
                    "type": "media-playout",
                    "timestamp": timestamp,
                    "kind": "audio",
                    "synthesizedSamplesDuration": 0.0,
                    "synthesizedSamplesEvents": 0,
                    "totalSamplesDuration": playout.duration,
                    "totalPlayoutDelay": playout.delay,
                    "totalSamplesCount": playout.samples,
                }
            )
        codec = None
        if counts is not None and negotiated is not None:
            codec = negotiated.codec(counts.payload_type)
        if codec is not None:
            codec_stats = _codec_stats(codec, kind, transport_id, timestamp)
            inbound["codecId"] = codec_stats["id"]
            out.append(codec_stats)
        if s.last_sender_report_at is not None:
            remote_id = f"RO{mid}_{ssrc}"
            inbound["remoteId"] = remote_id
            remote: Stats = {
                "id": remote_id,
                "type": "remote-outbound-rtp",
                "timestamp": _wallclock_ms(s.last_sender_report_at),
                "ssrc": ssrc,
                "kind": kind,
                "transportId": transport_id,
                "localId": inbound_id,
                # The SR's NTP timestamp: when the peer sent it, on the peer's wall clock.
                "remoteTimestamp": ntp_to_seconds(s._sr_ntp) * 1000.0,
                "packetsSent": s.remote_packets_sent,
                "bytesSent": s.remote_octets_sent,
                "reportsSent": s.remote_reports,
            }
            if "codecId" in inbound:
                remote["codecId"] = inbound["codecId"]
            out.append(remote)
        out.append(inbound)
    return out
