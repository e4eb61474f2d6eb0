"""JSEP (RFC 8829) as a pure core: no I/O, no clock, no trio.

* :class:`JsepSession` (:mod:`.session`) holds one side of a negotiation: the signalingState,
  the pending and current descriptions, the m-line plan, ICE restarts and negotiation-needed.
  It writes offers and answers from our transport parameters and turns applied descriptions
  into :mod:`.decisions` for the driver (the peer connection) to act upon.
* :mod:`.state`: the signalingState machine (webrtc-pc §4.3.1), ids and credentials.
* :mod:`.sections`: the m-line plan (:class:`MediaSlot`) and which offered sections we accept.
* :mod:`.offer_answer`: writing offers and answers, DTLS roles (RFC 8842).
* :mod:`.remote`: checking a remote description and reading its bundled transport.

One ICE/DTLS transport carries every live m-section (BUNDLE, RFC 9143); it is described by the
tagged section of the group, whichever kind that is.

* :mod:`.transceivers`: :class:`JsepTransceiver` (one RTCRtpTransceiver as the negotiation sees
  it) and the rules tying transceivers to m-sections; :mod:`.codecs` negotiates their codecs
  and header extensions. Applied descriptions report them as :class:`MediaChanged`.

See ``docs/jsep.md`` and ``docs/codecs.md``.
"""

from __future__ import annotations

from .decisions import (
    AddRemoteCandidate,
    Decision,
    Gather,
    MediaChanged,
    RestartIce,
    SignalingChange,
    StartDtls,
    StartIce,
    StartSctp,
    TransceiverUpdate,
)
from .offer_answer import (
    answer_setup,
    build_answer,
    build_offer,
    dtls_is_client,
    with_candidates,
    with_transport_candidates,
)
from .remote import RemoteData, RemoteTransport, read_remote, transport_sections
from .sections import (
    DATA_FORMAT,
    DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
    DEFAULT_SCTP_PORT,
    LocalTransport,
    MediaSlot,
    Sender,
    accepted_sections,
    answer_direction,
    is_data_section,
    is_media_section,
    plan_answer,
    plan_offer,
    slots_of,
)
from .session import Description, JsepSession, LocalCandidateTarget
from .state import (
    SIGNALING_STATES,
    implicit_description_type,
    new_ice_credentials,
    new_session_id,
    next_signaling_state,
)
from .transceivers import JsepTransceiver

__all__ = [
    "DATA_FORMAT",
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "DEFAULT_SCTP_PORT",
    "SIGNALING_STATES",
    "AddRemoteCandidate",
    "Decision",
    "Description",
    "Gather",
    "JsepSession",
    "JsepTransceiver",
    "LocalCandidateTarget",
    "LocalTransport",
    "MediaChanged",
    "MediaSlot",
    "RemoteData",
    "RemoteTransport",
    "RestartIce",
    "Sender",
    "SignalingChange",
    "StartDtls",
    "StartIce",
    "StartSctp",
    "TransceiverUpdate",
    "accepted_sections",
    "answer_direction",
    "answer_setup",
    "build_answer",
    "build_offer",
    "dtls_is_client",
    "implicit_description_type",
    "is_data_section",
    "is_media_section",
    "new_ice_credentials",
    "new_session_id",
    "next_signaling_state",
    "plan_answer",
    "plan_offer",
    "read_remote",
    "slots_of",
    "transport_sections",
    "with_candidates",
    "with_transport_candidates",
]
