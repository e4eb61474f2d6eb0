"""RTP, RTCP and SRTP: pure sans-IO cores (no trio, no clock; bytes and ``now`` in, bytes and
events out). See ``docs/rtp.md`` and ``docs/media.md``."""

from __future__ import annotations
