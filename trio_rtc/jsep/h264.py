"""H.264 ``profile-level-id`` and ``packetization-mode`` rules for codec negotiation.

RFC 6184 §8.1 packs three bytes into ``profile-level-id``: ``profile_idc``, ``profile-iop`` (the
``constraint_set0..5`` flags, most significant bit first, then two reserved zero bits) and
``level_idc``. The *profile* is not ``profile_idc`` alone: the same profile can be written in
several ways (RFC 6184 Table 5), and two descriptions configure the same H.264 codec only when
they name the same profile and the same ``packetization-mode`` (RFC 6184 §8.2.2). Levels may
differ; see :func:`answer_profile_level_id`.

Everything here reads text written by a peer: a malformed value raises
:class:`H264ParameterError` (a ``ValueError``) and nothing else, and the codec layer turns it into
"this codec is not supported".
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = [
    "DEFAULT_PROFILE_LEVEL_ID",
    "H264ParameterError",
    "H264Profile",
    "ProfileLevelId",
    "answer_h264_parameters",
    "answer_profile_level_id",
    "packetization_mode_untrusted",
    "parse_profile_level_id_untrusted",
    "same_h264_configuration",
]


class H264ParameterError(ValueError):
    """An H.264 fmtp parameter is malformed or names a profile or level we do not know."""


class H264Profile:
    """Names of the profiles RFC 6184 Table 5 distinguishes, plus the two H.264 (2012) added
    later (Progressive High, Constrained High: High with ``constraint_set4``/``set5``).
    :attr:`ProfileLevelId.profile` is one of these strings."""

    CONSTRAINED_BASELINE = "constrained-baseline"
    BASELINE = "baseline"
    MAIN = "main"
    EXTENDED = "extended"
    HIGH = "high"
    PROGRESSIVE_HIGH = "progressive-high"
    CONSTRAINED_HIGH = "constrained-high"
    HIGH_10 = "high-10"
    HIGH_422 = "high-422"
    HIGH_444 = "high-444"
    HIGH_10_INTRA = "high-10-intra"
    HIGH_422_INTRA = "high-422-intra"
    HIGH_444_INTRA = "high-444-intra"
    CAVLC_444_INTRA = "cavlc-444-intra"


# (profile_idc, profile-iop mask, profile-iop value after masking, profile): RFC 6184 Table 5 as
# bit masks. "x1xx0000" becomes mask 0b01001111, value 0b01000000: the "x" bits are free. The
# first matching row wins; the rows of one profile_idc never overlap.
_PROFILE_TABLE: tuple[tuple[int, int, int, str], ...] = (
    # Constrained Baseline: Baseline with constraint_set1 (so 42e0, 42c0, 4240, 42f0 …), Main
    # with constraint_set0, Extended with constraint_set0 and set1. All mean "decodable by a
    # Baseline, a Main and an Extended decoder", which is what Constrained Baseline is.
    (0x42, 0b0100_1111, 0b0100_0000, H264Profile.CONSTRAINED_BASELINE),
    (0x4D, 0b1000_1111, 0b1000_0000, H264Profile.CONSTRAINED_BASELINE),
    (0x58, 0b1100_1111, 0b1100_0000, H264Profile.CONSTRAINED_BASELINE),
    (0x42, 0b0100_1111, 0b0000_0000, H264Profile.BASELINE),
    (0x58, 0b1100_1111, 0b1000_0000, H264Profile.BASELINE),
    (0x4D, 0b1010_1111, 0b0000_0000, H264Profile.MAIN),
    (0x58, 0b1100_1111, 0b0000_0000, H264Profile.EXTENDED),
    (0x64, 0b1111_1111, 0b0000_0000, H264Profile.HIGH),
    (0x64, 0b1111_1111, 0b0000_1000, H264Profile.PROGRESSIVE_HIGH),
    (0x64, 0b1111_1111, 0b0000_1100, H264Profile.CONSTRAINED_HIGH),
    (0x6E, 0b1111_1111, 0b0000_0000, H264Profile.HIGH_10),
    (0x7A, 0b1111_1111, 0b0000_0000, H264Profile.HIGH_422),
    (0xF4, 0b1111_1111, 0b0000_0000, H264Profile.HIGH_444),
    (0x6E, 0b1111_1111, 0b0001_0000, H264Profile.HIGH_10_INTRA),
    (0x7A, 0b1111_1111, 0b0001_0000, H264Profile.HIGH_422_INTRA),
    (0xF4, 0b1111_1111, 0b0001_0000, H264Profile.HIGH_444_INTRA),
    (0x2C, 0b1111_1111, 0b0001_0000, H264Profile.CAVLC_444_INTRA),
)

# H.264 Table A-1 level_idc values (level × 10). Level 1b is written as level_idc 11 with
# constraint_set3 in the Baseline, Main and Extended profiles, as level_idc 9 in the others
# (H.264 §A.3.1 and §A.3.2; RFC 6184 §8.1).
_LEVELS = frozenset((9, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62))
_LEVEL_1B_RANK = 105  # between level 1 (rank 100) and level 1.1 (rank 110)
_CONSTRAINT_SET3 = 0b0001_0000
_SET3_MEANS_1B = frozenset((0x42, 0x4D, 0x58))


@attrs.frozen
class ProfileLevelId:
    """The three bytes of ``profile-level-id``, checked: the profile and the level are known."""

    profile_idc: int
    profile_iop: int
    level_idc: int

    @property
    def profile(self) -> str:
        for idc, mask, value, profile in _PROFILE_TABLE:
            if self.profile_idc == idc and self.profile_iop & mask == value:
                return profile
        raise H264ParameterError(f"unknown H.264 profile in profile-level-id {self}")

    @property
    def is_level_1b(self) -> bool:
        if self.profile_idc in _SET3_MEANS_1B:
            return self.level_idc == 11 and bool(self.profile_iop & _CONSTRAINT_SET3)
        return self.level_idc == 9

    @property
    def level_rank(self) -> int:
        """The level as a number that orders correctly (level 1b sits between 1 and 1.1)."""
        return _LEVEL_1B_RANK if self.is_level_1b else self.level_idc * 10

    def with_level_rank(self, rank: int) -> ProfileLevelId:
        """The same profile bytes at another level (a :attr:`level_rank`)."""
        iop = self.profile_iop
        if self.profile_idc in _SET3_MEANS_1B:
            # constraint_set3 means "1b" next to level_idc 11 in these profiles: set or clear it.
            iop = iop | _CONSTRAINT_SET3 if rank == _LEVEL_1B_RANK else iop & ~_CONSTRAINT_SET3
            level = 11 if rank == _LEVEL_1B_RANK else rank // 10
        else:
            level = 9 if rank == _LEVEL_1B_RANK else rank // 10
        return ProfileLevelId(self.profile_idc, iop, level)

    def __str__(self) -> str:
        return f"{self.profile_idc:02x}{self.profile_iop:02x}{self.level_idc:02x}"


#: RFC 6184 §8.1: without ``profile-level-id``, "Baseline profile, without additional
#: constraints at Level 1".
DEFAULT_PROFILE_LEVEL_ID = ProfileLevelId(0x42, 0x00, 10)

_HEX = frozenset("0123456789abcdefABCDEF")


def parse_profile_level_id_untrusted(text: str | None) -> ProfileLevelId:
    """``profile-level-id`` as written by a peer (None: absent, the RFC 6184 default). Raises
    :class:`H264ParameterError` unless it is six hex digits naming a known profile and level."""
    if text is None:
        return DEFAULT_PROFILE_LEVEL_ID
    value = text.strip()
    if len(value) != 6 or not set(value) <= _HEX:
        raise H264ParameterError(f"expected profile-level-id as six hex digits, got {value[:20]!r}")
    raw = bytes.fromhex(value)
    parsed = ProfileLevelId(raw[0], raw[1], raw[2])
    if parsed.profile_iop & 0b11:
        raise H264ParameterError(f"profile-level-id {value}: the reserved_zero_2bits are set")
    _ = parsed.profile  # raises for an unknown profile
    if parsed.level_idc not in _LEVELS:
        raise H264ParameterError(f"profile-level-id {value}: unknown level_idc {parsed.level_idc}")
    return parsed


def packetization_mode_untrusted(parameters: Mapping[str, str]) -> int:
    """``packetization-mode`` (RFC 6184 §8.1): 0 (single NAL unit, the default when absent),
    1 (non-interleaved) or 2 (interleaved)."""
    text = parameters.get("packetization-mode", "0").strip()
    if text not in ("0", "1", "2"):
        raise H264ParameterError(f"expected packetization-mode 0, 1 or 2, got {text[:20]!r}")
    return int(text)


def same_h264_configuration(first: Mapping[str, str], second: Mapping[str, str]) -> bool:
    """Whether two fmtp parameter sets describe the same H.264 codec configuration: the same
    ``packetization-mode`` and the same profile (RFC 6184 §8.2.2); levels may differ.

    "The same profile" is the profile of Table 5, not the same bytes: 42e01f, 4240xx, 42c0xx and
    4d80xx all name Constrained Baseline, so they match one another. Constrained Baseline does
    *not* match Baseline (42001f): a Baseline stream may use FMO/ASO/redundant slices that a
    Constrained Baseline decoder need not support, and the RFC asks for the same profile, so we
    keep them apart as libwebrtc and Firefox do. Malformed parameters match nothing."""
    try:
        if packetization_mode_untrusted(first) != packetization_mode_untrusted(second):
            return False
        one = parse_profile_level_id_untrusted(first.get("profile-level-id"))
        other = parse_profile_level_id_untrusted(second.get("profile-level-id"))
        return one.profile == other.profile
    except H264ParameterError:
        return False


def answer_profile_level_id(
    offered: ProfileLevelId, ours: ProfileLevelId, *, level_asymmetry_allowed: bool
) -> ProfileLevelId:
    """The ``profile-level-id`` an answer gives for an offered H.264 codec we support.

    The profile bytes are the offer's, as RFC 6184 §8.2.2 asks the answerer to keep the profile.
    The level: with ``level-asymmetry-allowed=1`` on both sides (RFC 6184 §8.1), each side's
    level is what it can *receive*, independently of the other, so the answer carries our own
    level. Without it one level serves both directions and the answerer may only lower it
    ("level downgrade"), so the answer carries the lower of the offered level and ours."""
    if level_asymmetry_allowed:
        rank = ours.level_rank
    else:
        rank = min(offered.level_rank, ours.level_rank)
    return offered.with_level_rank(rank)


def answer_h264_parameters(offered: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """The fmtp parameters an answer gives for an offered H.264 codec that matches one of ours
    (:func:`same_h264_configuration`): the offer's, with ``profile-level-id`` at the level
    :func:`answer_profile_level_id` allows. ``level-asymmetry-allowed`` counts only if both
    sides wrote ``1``. An absent ``profile-level-id`` stays absent while the default suits."""
    parameters = dict(offered)
    try:
        offered_id = parse_profile_level_id_untrusted(offered.get("profile-level-id"))
        our_id = parse_profile_level_id_untrusted(ours.get("profile-level-id"))
    except H264ParameterError:  # not a match then; the offer's text is all we can give back
        return parameters
    asymmetric = (
        offered.get("level-asymmetry-allowed", "").strip() == "1"
        and ours.get("level-asymmetry-allowed", "").strip() == "1"
    )
    answer = answer_profile_level_id(offered_id, our_id, level_asymmetry_allowed=asymmetric)
    if "profile-level-id" in offered or answer != DEFAULT_PROFILE_LEVEL_ID:
        parameters["profile-level-id"] = str(answer)
    return parameters
