"""What applying a description asks of the transports: plain records the driver (the peer
connection) acts upon, in the order given. The core never touches a transport itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..sdp import Fingerprint
from .codecs import (
    URI_ABS_SEND_TIME,
    URI_MID,
    URI_REPAIRED_RID,
    URI_RID,
    URI_TRANSPORT_CC,
    NegotiatedMedia,
)

if TYPE_CHECKING:
    from .transceivers import JsepTransceiver

__all__ = [
    "AddRemoteCandidate",
    "Decision",
    "Gather",
    "MediaChanged",
    "RestartIce",
    "SignalingChange",
    "StartDtls",
    "StartIce",
    "StartSctp",
    "TransceiverUpdate",
]


@attrs.frozen
class RestartIce:
    """Our ICE credentials change (an ICE restart, RFC 8445 §9): restart
    the agent with these; a new gathering follows."""

    ufrag: str
    pwd: str


@attrs.frozen
class StartIce:
    """Run connectivity checks against the peer's transport. ``new_generation``: these remote
    credentials are new (first answer, or the peer restarted ICE), so the agent (re)starts with
    them and ``role``; otherwise only the candidates are added. ``candidates`` are ``candidate:``
    attribute values (from the description, then those trickled early), all for ``mid`` /
    ``mline_index``, the BUNDLE tag."""

    ufrag: str
    pwd: str
    ice_lite: bool
    role: str  # "controlling" or "controlled"
    new_generation: bool
    mid: str | None
    mline_index: int
    candidates: tuple[str, ...] = ()
    end_of_candidates: bool = False


@attrs.frozen
class AddRemoteCandidate:
    """A trickled remote candidate for the running ICE generation (``value`` None: the peer's
    end of candidates, RFC 8838 §4.4)."""

    value: str | None
    mid: str | None
    mline_index: int | None
    ufrag: str


@attrs.frozen
class StartDtls:
    """Start the BUNDLE group's DTLS transport (once: later ones are no-ops for the driver)."""

    fingerprints: tuple[Fingerprint, ...]
    is_client: bool


@attrs.frozen
class StartSctp:
    """Start the SCTP association over DTLS, or update the peer's ``a=max-message-size`` if it
    runs (RFC 8841 §6)."""

    remote_port: int
    max_message_size: int


@attrs.frozen
class Gather:
    """Gather local candidates (if not yet) and announce those of ``ufrag`` to the application as
    ``sdpMid``/``sdpMLineIndex`` of the first bundled m-section, the BUNDLE tag: one transport,
    so each candidate is signalled once and the peer applies it to the whole group."""

    ufrag: str
    mid: str | None
    mline_index: int


@attrs.frozen
class SignalingChange:
    """signalingState became ``state``: fire ``signalingstatechange`` (webrtc-pc §4.4.1.5). An
    implicit rollback gives two, ``stable`` first."""

    state: str


@attrs.frozen
class TransceiverUpdate:
    """One audio/video transceiver as a just-applied description leaves it: what the RTP task
    needs to send and to demultiplex, and whether a ``track`` event is due.

    ``negotiated`` is None until an answer is applied (a remote offer alone negotiates nothing,
    but may already announce a remote track). ``send``/``receive`` follow currentDirection.
    ``ssrc``/``rtx_ssrc`` are ours (when sending); ``remote_ssrcs`` the peer's media SSRCs,
    ``remote_rtx_ssrcs`` its (media, RTX) pairs from ``a=ssrc-group:FID``, ``remote_rids`` the
    rids it sends (RFC 8851), ``remote_stream_ids``/``remote_track_id`` its ``a=msid``.
    ``extensions`` maps the negotiated header-extension URIs to their ids (properties name the
    ones demultiplexing and congestion control use). ``track_added``: the transceiver started
    receiving (webrtc-pc §4.4.1.5 "process the addition of a remote track": fire ``track``);
    ``track_removed``: it stopped (mute the remote track). ``transceiver`` is the core's record
    itself, for the driver to find its RTCRtpTransceiver."""

    mid: str | None
    mline_index: int | None
    kind: str
    negotiated: NegotiatedMedia | None
    send: bool
    receive: bool
    stopped: bool
    ssrc: int | None
    rtx_ssrc: int | None
    remote_ssrcs: tuple[int, ...]
    remote_rtx_ssrcs: tuple[tuple[int, int], ...]
    remote_rids: tuple[str, ...]
    remote_stream_ids: tuple[str, ...]
    remote_track_id: str | None
    extensions: tuple[tuple[str, int], ...]
    track_added: bool = False
    track_removed: bool = False
    transceiver: JsepTransceiver | None = attrs.field(default=None, eq=False, repr=False)

    def extension_id(self, uri: str) -> int | None:
        return dict(self.extensions).get(uri)

    @property
    def mid_extension(self) -> int | None:
        return self.extension_id(URI_MID)

    @property
    def rid_extension(self) -> int | None:
        return self.extension_id(URI_RID)

    @property
    def repaired_rid_extension(self) -> int | None:
        return self.extension_id(URI_REPAIRED_RID)

    @property
    def abs_send_time_extension(self) -> int | None:
        return self.extension_id(URI_ABS_SEND_TIME)

    @property
    def transport_cc_extension(self) -> int | None:
        return self.extension_id(URI_TRANSPORT_CC)


@attrs.frozen
class MediaChanged:
    """An applied description changed the audio/video transceivers (a remote offer or answer,
    or our answer): reconfigure the RTP task (payload types, SSRCs, MID/RID extension ids for
    demultiplexing, RFC 8843 §9.2) from ``transceivers`` (every one with an m-line, in m-line
    order) and fire a ``track`` event for each ``track_added``. webrtc-pc fires ``track``
    after ``signalingstatechange``: the driver queues those events until it has acted on the
    ``SignalingChange`` of the same call.

    ``removed``: the records an applied answer took out of the set of transceivers (webrtc-pc
    §4.4.1.5: stopped, and their m-section rejected in the current local or remote
    description); their last update (``stopped``) is in ``transceivers``. The driver acts on
    that update, then drops their RTCRtpTransceivers from ``getTransceivers()``. Their m-lines
    may be recycled by later offers (RFC 8829 §5.2.2)."""

    transceivers: tuple[TransceiverUpdate, ...]
    removed: tuple[JsepTransceiver, ...] = ()


Decision = (
    SignalingChange
    | RestartIce
    | StartIce
    | AddRemoteCandidate
    | StartDtls
    | StartSctp
    | Gather
    | MediaChanged
)
