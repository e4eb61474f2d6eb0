"""The trio side of ``RTCCertificate.generate``: key generation in a worker thread.

Kept out of :mod:`trio_rtc.dtls.certificate` so that the certificate core imports without trio;
:meth:`RTCCertificate.generate <trio_rtc.dtls.certificate.RTCCertificate.generate>` imports this
module when it is first awaited.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import trio

from .certificate import RTCCertificate, parse_keygen_algorithm, wall_clock_ms

__all__ = ["generate_certificate"]


async def generate_certificate(
    keygenAlgorithm: str | Mapping[str, Any] | None = None,
    *,
    cls: type[RTCCertificate] = RTCCertificate,
) -> RTCCertificate:
    """W3C ``generateCertificate``: check ``keygenAlgorithm``, read the wall clock once, then
    generate the key and sign the certificate in a worker thread (tens of milliseconds for RSA)
    so the event loop keeps running."""
    # Validate in the caller's thread so errors are raised without a thread round trip.
    parse_keygen_algorithm(keygenAlgorithm)
    now_ms = wall_clock_ms()
    return await trio.to_thread.run_sync(
        functools.partial(cls.generate_sync, keygenAlgorithm, now_ms=now_ms)
    )
