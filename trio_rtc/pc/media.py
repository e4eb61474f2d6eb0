"""The peer connection's media side: its RTCRtpTransceivers, paired with the JSEP core's records,
the RTP task of the BUNDLE transport, and one sender/receiver task per transceiver that sends or
receives.

The JSEP core decides (directions, mids, codecs, SSRCs) and reports each applied description as
a ``MediaChanged`` decision; :meth:`MediaSide.changed` applies it: the W3C objects learn their
mid, currentDirection and codecs, the RTP task (started with the first transceiver that sends or
receives) learns how to demultiplex, and the tasks that move encoded frames start. ``track``
events are returned to the caller, which fires them after ``signalingstatechange`` as
webrtc-pc §4.4.1.5 orders.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import trio

from ..events import Event
from ..exceptions import InvalidAccessError
from ..jsep import JsepSession, TransceiverUpdate
from ..jsep.transceivers import JsepTransceiver
from ..media import (
    MediaStream,
    MediaStreamTrack,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    run_receiver,
    run_sender,
)
from ..media.simulcast import run_simulcast_sender
from ..rtp.demux import MediaSection
from ..rtp.driver import RtpTransport
from ..rtp.extensions import ExtensionMap

__all__ = ["MediaSide", "RTCTrackEvent"]

_INIT = frozenset({"direction", "streams", "sendEncodings"})


class RTCTrackEvent(Event):
    """The ``track`` event (webrtc-pc §5.7): ``receiver``, ``track``, ``streams``,
    ``transceiver``."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        track: MediaStreamTrack,
        streams: Sequence[MediaStream],
        transceiver: RTCRtpTransceiver,
    ) -> None:
        super().__init__("track")
        self.receiver = receiver
        self.track = track
        self.streams = list(streams)
        self.transceiver = transceiver


class MediaSide:
    """Owned by one RTCPeerConnection. ``on_negotiation_needed`` is its negotiation-needed
    update; ``supervise_rtp`` runs the RTP task under the connection's supervision."""

    def __init__(
        self,
        jsep: JsepSession,
        on_negotiation_needed: Callable[[], object],
        supervise_rtp: Callable[[RtpTransport], Awaitable[None]],
    ) -> None:
        self._jsep = jsep
        self._on_negotiation_needed = on_negotiation_needed
        self._supervise_rtp = supervise_rtp
        self._pairs: list[tuple[RTCRtpTransceiver, JsepTransceiver]] = []
        self._remote_streams: dict[str, MediaStream] = {}
        self._sending: set[RTCRtpTransceiver] = set()
        self._receiving: set[RTCRtpTransceiver] = set()
        self.rtp: RtpTransport | None = None

    # --- the W3C methods ---------------------------------------------------------------------

    def transceivers(self) -> list[RTCRtpTransceiver]:
        return [w3c for w3c, _ in self._pairs]

    def add_transceiver(
        self, track_or_kind: MediaStreamTrack | str, init: Mapping[str, Any] | None
    ) -> RTCRtpTransceiver:
        options = dict(init or {})
        unknown = set(options) - _INIT
        if unknown:
            raise TypeError(
                f"RTCRtpTransceiverInit has no member(s) {sorted(unknown)}; "
                f"expected some of {sorted(_INIT)}"
            )
        if isinstance(track_or_kind, str) and track_or_kind not in ("audio", "video"):
            raise TypeError(
                f"addTransceiver() takes a track, 'audio' or 'video', not {track_or_kind!r}"
            )
        streams = list(options.get("streams", ()))
        w3c = RTCRtpTransceiver(
            track_or_kind,
            direction=options.get("direction", "sendrecv"),
            sendEncodings=options.get("sendEncodings"),
            streams=streams,
            on_negotiation_needed=lambda: self._sync(w3c),
        )
        track = w3c.sender.track
        record = self._jsep.add_transceiver(
            w3c.sender.kind,
            w3c.direction,
            stream_ids=[getattr(s, "id", s) for s in streams],
            track_id=track.id if track is not None else None,
        )
        record.send_rids = w3c.sender.simulcast_rids
        self._pairs.append((w3c, record))
        self._watch_preferences(w3c, record)
        self._on_negotiation_needed()
        return w3c

    @staticmethod
    def _watch_preferences(w3c: RTCRtpTransceiver, record: JsepTransceiver) -> None:
        def copy() -> None:
            record.codec_preferences = tuple(w3c.codec_preferences)

        w3c.on_codec_preferences = copy

    def add_track(self, track: MediaStreamTrack, streams: Sequence[MediaStream]) -> RTCRtpSender:
        """webrtc-pc §4.4.1.6 addTrack: reuse a transceiver of the kind that never sent and has
        no track, else a new sendrecv one."""
        if any(w3c.sender.track is track for w3c, _ in self._pairs):
            raise InvalidAccessError(f"track {track.id} already has a sender on this connection")
        for w3c, record in self._pairs:
            if (
                w3c.sender.kind == track.kind
                and w3c.sender.track is None
                and not w3c.stopping
                and record.current_direction in (None, "recvonly", "inactive")
                and not record.stopped
            ):
                w3c.sender._track = track
                w3c.sender._stream_ids = [s.id for s in streams]
                record.track_id = track.id
                record.stream_ids = tuple(s.id for s in streams)
                if w3c.direction in ("recvonly", "inactive"):
                    w3c.direction = "sendrecv" if w3c.direction == "recvonly" else "sendonly"
                self._sync(w3c)
                return w3c.sender
        return self.add_transceiver(track, {"streams": list(streams)}).sender

    def remove_track(self, sender: RTCRtpSender) -> None:
        for w3c, record in self._pairs:
            if w3c.sender is sender:
                if sender.track is None:
                    return
                sender._track = None
                record.track_id = None
                if w3c.direction == "sendrecv":
                    w3c.direction = "recvonly"
                elif w3c.direction == "sendonly":
                    w3c.direction = "inactive"
                self._sync(w3c)
                return
        raise InvalidAccessError("removeTrack(): the sender is not one of this connection's")

    def _sync(self, w3c: RTCRtpTransceiver) -> None:
        """The application changed a transceiver (direction, stop): tell the core."""
        for candidate, record in self._pairs:
            if candidate is w3c:
                record.direction = w3c.direction
                if w3c.stopping and not record.stopping:
                    self._jsep.stop_transceiver(record)
        self._on_negotiation_needed()

    # --- applying descriptions -------------------------------------------------------------------

    def changed(
        self,
        updates: Sequence[TransceiverUpdate],
        *,
        nursery: trio.Nursery | None,
        dtls: Any,
        ice: Any,
        handler_queue: Any,
        removed: Sequence[JsepTransceiver] = (),
    ) -> list[RTCTrackEvent]:
        """Apply an applied description's transceivers; returns the ``track`` events due.
        ``removed``: stopped transceivers whose m-line the answer rejected (webrtc-pc §4.4.1.5
        takes them out of the set)."""
        events: list[RTCTrackEvent] = []
        live: list[tuple[RTCRtpTransceiver, TransceiverUpdate]] = []
        for update in updates:
            w3c = self._w3c_for(update)
            w3c.set_mid(update.mid)
            if update.transceiver is not None:
                w3c.set_current_direction(update.transceiver.current_direction)
                w3c.sender.keep_simulcast_rids(update.transceiver.send_rids)
            if update.track_removed:
                # webrtc-pc §4.4.1.5 "process the removal of a remote track": out of its streams.
                for stream in self._remote_streams.values():
                    stream.remove_remote_track(w3c.receiver.track)
                # Then it is muted; it does not end, and the transceiver stays.
                w3c.receiver.track._set_muted(True)
            if update.stopped:
                w3c.set_stopped()
                continue
            if update.negotiated is not None:
                w3c.sender.set_negotiated(update.negotiated)
                w3c.receiver.set_negotiated(update.negotiated)
            if update.mid is not None and update.negotiated is not None:
                live.append((w3c, update))
            if update.track_added:
                streams = [self._remote_stream(sid) for sid in update.remote_stream_ids]
                for stream in streams:
                    if w3c.receiver.track not in stream.getTracks():
                        stream.addTrack(w3c.receiver.track)
                events.append(RTCTrackEvent(w3c.receiver, w3c.receiver.track, streams, w3c))
        if live and nursery is not None and dtls is not None and ice is not None:
            self._run_media(live, nursery=nursery, dtls=dtls, ice=ice, handler_queue=handler_queue)
        if removed:
            gone = [w3c for w3c, record in self._pairs if any(record is r for r in removed)]
            for w3c in gone:
                self._sending.discard(w3c)
                self._receiving.discard(w3c)
            self._pairs = [(w, r) for w, r in self._pairs if w not in gone]
        return events

    def _w3c_for(self, update: TransceiverUpdate) -> RTCRtpTransceiver:
        for w3c, record in self._pairs:
            if record is update.transceiver:
                return w3c
        # A transceiver the remote offer created (webrtc-pc §4.4.1.5): recvonly, no track.
        w3c = RTCRtpTransceiver(
            update.kind, direction="recvonly", on_negotiation_needed=lambda: self._sync(w3c)
        )
        assert update.transceiver is not None
        self._pairs.append((w3c, update.transceiver))
        self._watch_preferences(w3c, update.transceiver)
        return w3c

    def _remote_stream(self, stream_id: str) -> MediaStream:
        stream = self._remote_streams.get(stream_id)
        if stream is None:
            stream = self._remote_streams[stream_id] = MediaStream(id=stream_id)
        return stream

    def _run_media(
        self,
        live: list[tuple[RTCRtpTransceiver, TransceiverUpdate]],
        *,
        nursery: trio.Nursery,
        dtls: Any,
        ice: Any,
        handler_queue: Any,
    ) -> None:
        sections: list[MediaSection] = []
        extmap: dict[int, str] = {}
        allow_mixed = False
        reduced_size = False
        for _, update in live:
            negotiated = update.negotiated
            assert negotiated is not None and update.mid is not None
            extmap.update(negotiated.extmap)
            allow_mixed = allow_mixed or negotiated.extmap_allow_mixed
            reduced_size = reduced_size or negotiated.rtcp_rsize
            remote = set(update.remote_ssrcs)
            for primary, rtx in update.remote_rtx_ssrcs:
                remote.update((primary, rtx))
            local = {s for s in (update.ssrc, update.rtx_ssrc) if s is not None and update.send}
            sections.append(
                MediaSection(
                    mid=update.mid,
                    payload_types=negotiated.payload_types,
                    rtx_payload_types=negotiated.rtx.keys(),
                    ssrcs=remote,
                    fid_groups=update.remote_rtx_ssrcs,
                    rids=update.transceiver.receive_rids if update.transceiver else (),
                    local_ssrcs=local,
                    mid_extension_id=update.mid_extension,
                    rid_extension_id=update.rid_extension,
                    repaired_rid_extension_id=update.repaired_rid_extension,
                )
            )
        extension_map = ExtensionMap(extmap, allow_mixed=allow_mixed)
        rtp = self.rtp
        if rtp is None:
            rtp = self.rtp = RtpTransport(
                dtls,
                ice,
                sections=sections,
                extension_map=extension_map,
                cname=self._jsep.cname,
                reduced_size=reduced_size,
                video=any(u.kind == "video" for _, u in live),
            )
            rtp._handler_queue = handler_queue
            ice.set_rtp_channel(rtp.inbox_send_channel())
            nursery.start_soon(self._supervise_rtp, rtp, name="trio_rtc.rtp")
        else:
            rtp.configure(sections, extension_map=extension_map)
        for w3c, update in live:
            negotiated = update.negotiated
            mid = update.mid
            assert negotiated is not None and mid is not None
            w3c.sender.set_transport(dtls)
            w3c.receiver.set_transport(dtls)
            if update.receive and w3c not in self._receiving:
                self._receiving.add(w3c)
                nursery.start_soon(
                    run_receiver,
                    w3c.receiver,
                    rtp,
                    mid,
                    negotiated,
                    name=f"trio_rtc.rtp.recv {mid}",
                )
            send_rids = update.transceiver.simulcast.send_rids if update.transceiver else ()
            if (
                update.send
                and update.ssrc is not None
                and w3c not in self._sending
                and send_rids
                and update.kind == "video"
            ):
                self._sending.add(w3c)
                nursery.start_soon(
                    functools.partial(
                        run_simulcast_sender,
                        w3c.sender,
                        rtp,
                        mid,
                        update.ssrc,
                        negotiated,
                        send_rids,
                        rtx_ssrc=update.rtx_ssrc,
                    ),
                    name=f"trio_rtc.rtp.send {mid}",
                )
            if update.send and update.ssrc is not None and w3c not in self._sending:
                self._sending.add(w3c)
                nursery.start_soon(
                    functools.partial(
                        run_sender,
                        w3c.sender,
                        rtp,
                        mid,
                        update.ssrc,
                        negotiated,
                        rtx_ssrc=update.rtx_ssrc,
                    ),
                    name=f"trio_rtc.rtp.send {mid}",
                )

    def close(self) -> None:
        """The connection closes: every transceiver stops, remote tracks end (no events)."""
        for w3c, _ in self._pairs:
            w3c.set_stopped()
        if self.rtp is not None:
            self.rtp.close()
