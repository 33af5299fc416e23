"""Durable scheduler state: SQLite (embedded default) or PostgreSQL (several replicas)."""

from __future__ import annotations

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import SqlStore, StoreUnavailable, redact
from kubeforge.scheduler.store.sqlite import BUSY_TIMEOUT_S, SqliteStore

_SQLITE_OPTIONS = "synchronous=NORMAL|FULL, busy_timeout_ms=N"


def open_store(url: str) -> SqlStore:
    """A store from a URL: `sqlite:///path/to/db[?synchronous=NORMAL|FULL&busy_timeout_ms=N]`, a plain path,
    or `postgresql://...`. Errors show the URL with its password redacted."""
    if url.startswith(("postgresql://", "postgres://")):
        from kubeforge.scheduler.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        path, _, query = url.removeprefix("sqlite:///").partition("?")
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        unknown = sorted(set(options) - {"synchronous", "busy_timeout_ms"})
        if unknown:
            raise InputError(f"store {redact(url)!r}: unknown option(s) {unknown}; valid: {_SQLITE_OPTIONS}")
        busy_ms = options.get("busy_timeout_ms", str(int(BUSY_TIMEOUT_S * 1000)))
        if not busy_ms.isdigit():
            raise InputError(f"store {redact(url)!r}: busy_timeout_ms={busy_ms!r} is not a whole number")
        return SqliteStore(
            path, synchronous=options.get("synchronous", "NORMAL").upper(), busy_timeout_s=int(busy_ms) / 1000
        )
    if "://" in url:
        raise InputError(f"store {redact(url)!r}: use sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB")
    return SqliteStore(url)


__all__ = ["SqlStore", "SqliteStore", "StoreUnavailable", "open_store", "redact"]
