"""Durable scheduler state: SQLite (embedded default) or PostgreSQL (several replicas)."""

from __future__ import annotations

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import SqlStore
from kubeforge.scheduler.store.sqlite import SqliteStore


def open_store(url: str) -> SqlStore:
    """A store from a URL: `sqlite:///path/to/db[?synchronous=NORMAL|FULL]`, a plain path, or `postgresql://...`."""
    if url.startswith(("postgresql://", "postgres://")):
        from kubeforge.scheduler.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        path, _, query = url.removeprefix("sqlite:///").partition("?")
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        unknown = sorted(set(options) - {"synchronous"})
        if unknown:
            raise InputError(f"store {url!r}: unknown option(s) {unknown}; valid: synchronous=NORMAL|FULL")
        return SqliteStore(path, synchronous=options.get("synchronous", "NORMAL").upper())
    if "://" in url:
        raise InputError(f"store {url!r}: use sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB")
    return SqliteStore(url)


__all__ = ["SqlStore", "SqliteStore", "open_store"]
