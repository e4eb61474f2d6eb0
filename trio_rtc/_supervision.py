"""Small helpers for the supervising task tree."""

from __future__ import annotations

__all__ = ["unwrap"]


def unwrap(exc: BaseException) -> BaseException:
    """The exception a component's task really raised: trio's nurseries wrap it in an
    ExceptionGroup (strict exception groups); a group of one is unwrapped, layer by layer."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
