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

__all__ = ["generate_certificate", "shared_certificate"]

#: A shared certificate is replaced once less than this is left of its life (ms).
RENEW_MARGIN_MS = 24 * 3600 * 1000

_shared: RTCCertificate | None = None
#: Per trio run, the generation of the shared certificate in progress (waiters wait on it).
_pending: dict[trio.lowlevel.TrioToken, trio.Event] = {}


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


async def shared_certificate() -> RTCCertificate:
    """The certificate every peer connection of this process uses when it was given none
    (ECDSA P-256, 30 days), as browsers share one per origin: made once, in a worker thread,
    and replaced a day before it expires. Peer connections created at the same moment wait
    for the one being made instead of each making its own."""
    global _shared
    while True:
        certificate = _shared
        if certificate is not None and certificate.expires - wall_clock_ms() > RENEW_MARGIN_MS:
            return certificate
        token = trio.lowlevel.current_trio_token()
        making = _pending.get(token)
        if making is not None:
            await making.wait()  # made (or its maker was cancelled: then try ourselves)
            continue
        done = _pending[token] = trio.Event()
        try:
            _shared = await generate_certificate()
        finally:
            del _pending[token]
            done.set()
