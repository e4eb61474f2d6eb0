"""RTP, RTCP and SRTP: pure sans-IO cores (no trio, no clock; bytes and ``now`` in, bytes and
events out). See ``docs/media.md`` as the media layer grows (issue 11)."""

from __future__ import annotations
