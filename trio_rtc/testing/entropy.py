"""Seed what trio_rtc draws at random, for the length of one simulation.

trio_rtc takes its identifiers and nonces from :mod:`secrets` (ICE credentials, the ICE
tie-breaker, STUN transaction ids, SSRCs, CNAMEs, SDP session ids), and three cores have an
injection parameter whose default is unseeded: the ICE agent's ``rng`` (the consent-check
jitter), the SCTP association's ``rng`` (verification tags, initial TSN, cookie secret) and the
DTLS connection's ``random_bytes`` (hello randoms, cookie secret). The peer connection does not
pass those parameters through yet, so :func:`seeded_entropy` swaps, for the duration of a
``with`` block, the ``secrets`` functions and those three defaults for draws from one
``random.Random(seed)``, and restores them afterwards.

It is a stop-gap for simulations only: the swap is process-wide (any code calling ``secrets``
meanwhile gets predictable values), so never use it around real connections. What it cannot
reach: the ephemeral ECDHE keys and the ECDSA signature nonces that ``cryptography`` draws
from OpenSSL, so DTLS handshake bytes (one signature's length by a byte or two) and every
encrypted record still differ between runs; ``docs/research.md`` lists what stays identical.
"""

from __future__ import annotations

import base64
import contextlib
import random
import secrets
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["seeded_entropy"]

_T = TypeVar("_T")


def _swap_default(function: Any, name: str, value: object) -> Any:
    """Replace the default of parameter *name* of *function*; return a restorer's argument."""
    code = function.__code__
    kwdefaults = function.__kwdefaults__
    if kwdefaults is not None and name in kwdefaults:
        saved = dict(kwdefaults)
        function.__kwdefaults__ = {**kwdefaults, name: value}
        return ("kw", saved)
    positional = code.co_varnames[: code.co_argcount]
    defaults = function.__defaults__ or ()
    index = positional.index(name) - (len(positional) - len(defaults))
    if index < 0:
        raise ValueError(f"{function.__qualname__}() has no default for {name!r}")
    function.__defaults__ = (*defaults[:index], value, *defaults[index + 1 :])
    return ("pos", defaults)


def _restore_default(function: Any, saved: Any) -> None:
    kind, value = saved
    if kind == "kw":
        function.__kwdefaults__ = value
    else:
        function.__defaults__ = value


@contextlib.contextmanager
def seeded_entropy(seed: int) -> Iterator[random.Random]:
    """Within the block, trio_rtc's random draws come from ``random.Random(seed)`` (see the
    module docstring for what that covers and what it cannot)."""
    from trio_rtc.dtls.connection import DtlsConnection
    from trio_rtc.ice.agent import IceAgent
    from trio_rtc.sctp.association import SctpAssociation

    rng = random.Random(seed)

    def token_bytes(nbytes: int | None = None) -> bytes:
        return rng.randbytes(32 if nbytes is None else nbytes)

    def token_hex(nbytes: int | None = None) -> str:
        return token_bytes(nbytes).hex()

    def token_urlsafe(nbytes: int | None = None) -> str:
        return base64.urlsafe_b64encode(token_bytes(nbytes)).rstrip(b"=").decode("ascii")

    def choice(sequence: Sequence[_T]) -> _T:
        return rng.choice(sequence)

    replacements: dict[str, object] = {
        "token_bytes": token_bytes,
        "token_hex": token_hex,
        "token_urlsafe": token_urlsafe,
        "randbits": rng.getrandbits,
        "choice": choice,
        "randbelow": rng.randrange,
    }
    saved_secrets = {name: getattr(secrets, name) for name in replacements}
    defaults = [
        (IceAgent.__init__, "rng", random.Random(rng.getrandbits(64))),
        (SctpAssociation.__init__, "rng", random.Random(rng.getrandbits(64))),
        (DtlsConnection.__init__, "random_bytes", random.Random(rng.getrandbits(64)).randbytes),
    ]
    saved_defaults: list[tuple[Any, Any]] = []
    try:
        for name, value in replacements.items():
            setattr(secrets, name, value)
        for function, name, value in defaults:
            saved_defaults.append((function, _swap_default(function, name, value)))
        yield rng
    finally:
        for name, value in saved_secrets.items():
            setattr(secrets, name, value)
        for function, saved in reversed(saved_defaults):
            _restore_default(function, saved)
