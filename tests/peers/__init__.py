"""Harnesses for third-party peers the interop tests start: coturn and aioice (see docs/interop.md)."""
