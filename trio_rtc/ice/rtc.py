"""The W3C value objects of ICE: ``RTCIceCandidate``, ``RTCIceParameters``,
``RTCIceCandidatePair``, with the spec's attribute names and ``toJSON()``.

``RTCIceCandidate`` accepts exactly what a browser's ``candidate.toJSON()`` gives (``candidate``,
``sdpMid``, ``sdpMLineIndex``, ``usernameFragment``), either as a dict or as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .candidate import Candidate, CandidateError

__all__ = ["RTCIceCandidate", "RTCIceCandidatePair", "RTCIceParameters", "RTCIceServer"]

_INIT_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


class RTCIceCandidate:
    """A candidate as the W3C spec describes it (webrtc-pc §5.7).

    ``candidate`` is the ``candidate-attribute`` text (``"candidate:…"``); the other attributes
    (``address``, ``port``, ``type``…) are parsed from it and are ``None`` when it is empty (the
    end-of-candidates marker) or cannot be parsed."""

    def __init__(
        self,
        candidateInitDict: Mapping[str, Any] | None = None,
        /,
        *,
        candidate: str = "",
        sdpMid: str | None = None,
        sdpMLineIndex: int | None = None,
        usernameFragment: str | None = None,
    ) -> None:
        if candidateInitDict is not None:
            unknown = set(candidateInitDict) - _INIT_KEYS
            if unknown:
                raise TypeError(
                    f"RTCIceCandidateInit has no member(s) {sorted(unknown)}; "
                    f"expected some of {sorted(_INIT_KEYS)}"
                )
            candidate = candidateInitDict.get("candidate", "") or ""
            sdpMid = candidateInitDict.get("sdpMid")
            sdpMLineIndex = candidateInitDict.get("sdpMLineIndex")
            usernameFragment = candidateInitDict.get("usernameFragment")
        if not isinstance(candidate, str):
            raise TypeError(f"candidate must be a str, not {type(candidate).__name__}")
        if sdpMid is None and sdpMLineIndex is None:
            raise TypeError("RTCIceCandidate needs sdpMid or sdpMLineIndex (both are null)")
        if sdpMLineIndex is not None and (
            not isinstance(sdpMLineIndex, int) or not 0 <= sdpMLineIndex <= 0xFFFF
        ):
            raise TypeError(f"sdpMLineIndex must be an unsigned short, not {sdpMLineIndex!r}")
        self._init(candidate, sdpMid, sdpMLineIndex, usernameFragment)

    def _init(
        self,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
        username_fragment: str | None,
        parsed: Candidate | None = None,
    ) -> None:
        text = candidate[2:] if candidate.startswith("a=") else candidate
        # The SDP line's own ending is tolerated (some signaling keeps it), as browsers do;
        # a line break or NUL inside makes it no candidate line (it could not go into an SDP).
        text = text.rstrip("\r\n")
        self.candidate = text
        self.sdpMid = sdp_mid
        self.sdpMLineIndex = sdp_mline_index
        if parsed is None and text and not ("\r" in text or "\n" in text or "\x00" in text):
            try:
                parsed = Candidate.from_sdp(text)
            except CandidateError:
                parsed = None
        self._parsed = parsed
        if username_fragment is None and parsed is not None:
            username_fragment = parsed.ufrag
        self.usernameFragment = username_fragment

    @classmethod
    def from_candidate(
        cls,
        candidate: Candidate,
        *,
        sdpMid: str | None = None,
        sdpMLineIndex: int | None = None,
        usernameFragment: str | None = None,
    ) -> RTCIceCandidate:
        """Wrap a parsed candidate. Unlike the constructor, sdpMid and sdpMLineIndex may both be
        None (a transport-level candidate that no m-section has claimed yet)."""
        self = cls.__new__(cls)
        # The text is what to_sdp() wrote: parsing it again would give ``candidate`` back.
        self._init(candidate.to_sdp(), sdpMid, sdpMLineIndex, usernameFragment, candidate)
        return self

    # --- parsed attributes (webrtc-pc §5.7.1) -------------------------------------------------

    @property
    def parsed(self) -> Candidate | None:
        """The parsed candidate, or None for end-of-candidates or unparseable text."""
        return self._parsed

    @property
    def foundation(self) -> str | None:
        return self._parsed.foundation if self._parsed else None

    @property
    def component(self) -> str | None:
        if self._parsed is None:
            return None
        return {1: "rtp", 2: "rtcp"}.get(self._parsed.component)

    @property
    def priority(self) -> int | None:
        return self._parsed.priority if self._parsed else None

    @property
    def address(self) -> str | None:
        return self._parsed.host if self._parsed else None

    @property
    def protocol(self) -> str | None:
        return self._parsed.transport if self._parsed else None

    @property
    def port(self) -> int | None:
        return self._parsed.port if self._parsed else None

    @property
    def type(self) -> str | None:
        return self._parsed.type if self._parsed else None

    @property
    def tcpType(self) -> str | None:
        return self._parsed.tcptype if self._parsed else None

    @property
    def relatedAddress(self) -> str | None:
        return self._parsed.related_address if self._parsed else None

    @property
    def relatedPort(self) -> int | None:
        return self._parsed.related_port if self._parsed else None

    @property
    def relayProtocol(self) -> str | None:
        """For a relay candidate we gathered: how we reach its TURN server, ``"udp"``,
        ``"tcp"`` (``turn:…?transport=tcp``) or ``"tls"`` (``turns:``). None otherwise."""
        parsed = self._parsed
        if parsed is None or parsed.type != "relay" or parsed.server_url is None:
            return None
        url = parsed.server_url.lower()
        if url.startswith("turns:"):
            return "tls"
        return "tcp" if "transport=tcp" in url else "udp"

    @property
    def url(self) -> str | None:
        """For a candidate we gathered through a STUN or TURN server (srflx, relay): that
        server's URL. None for host, peer-reflexive and remote candidates."""
        return self._parsed.server_url if self._parsed else None

    def toJSON(self) -> dict[str, Any]:
        """The RTCIceCandidateInit a browser's ``toJSON()`` gives."""
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdpMid,
            "sdpMLineIndex": self.sdpMLineIndex,
            "usernameFragment": self.usernameFragment,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RTCIceCandidate):
            return NotImplemented
        return self.toJSON() == other.toJSON()

    def __hash__(self) -> int:
        return hash((self.candidate, self.sdpMid, self.sdpMLineIndex, self.usernameFragment))

    def __repr__(self) -> str:
        return f"RTCIceCandidate({self.candidate!r}, sdpMid={self.sdpMid!r})"


@attrs.frozen
class RTCIceParameters:
    """``usernameFragment`` and ``password`` of one side (and ``iceLite``, from webrtc-ice)."""

    usernameFragment: str
    password: str
    iceLite: bool = False

    @classmethod
    def coerce(cls, value: RTCIceParameters | Mapping[str, Any]) -> RTCIceParameters:
        if isinstance(value, RTCIceParameters):
            return value
        try:
            return cls(
                usernameFragment=str(value["usernameFragment"]),
                password=str(value["password"]),
                iceLite=bool(value.get("iceLite", False)),
            )
        except KeyError as exc:
            raise TypeError(f"RTCIceParameters needs {exc.args[0]!r}") from None


@attrs.frozen
class RTCIceCandidatePair:
    """The spec's RTCIceCandidatePair: ``local`` and ``remote`` candidates."""

    local: RTCIceCandidate
    remote: RTCIceCandidate


def _url_tuple(urls: str | Iterable[str]) -> tuple[str, ...]:
    """``urls`` as the spec allows it, one URL string or a sequence of them."""
    url_list = (urls,) if isinstance(urls, str) else tuple(urls)
    if not url_list or not all(isinstance(u, str) for u in url_list):
        raise TypeError(f"RTCIceServer urls must be a URL string or a list of them, not {urls!r}")
    return url_list


@attrs.frozen
class RTCIceServer:
    """One entry of ``iceServers``: ``urls`` (a string or a list), ``username``, ``credential``."""

    urls: tuple[str, ...] = attrs.field(converter=_url_tuple)
    username: str | None = None
    credential: str | None = None

    @classmethod
    def coerce(cls, value: RTCIceServer | Mapping[str, Any]) -> RTCIceServer:
        if isinstance(value, RTCIceServer):
            return value
        if "urls" not in value:
            raise TypeError("RTCIceServer needs 'urls' (a URL string or a list of them)")
        return cls(
            urls=value["urls"], username=value.get("username"), credential=value.get("credential")
        )
