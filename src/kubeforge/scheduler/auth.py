"""Who a bearer token belongs to, with a bounded cache of valid tokens only.

An unknown token is looked up every time (and costs the caller a store read), so a client
sending random tokens cannot fill memory; a known one is remembered for a short while,
so that a revocation or expiry elsewhere takes effect within `ttl_s`.
"""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_CACHED_TOKENS = 4096
TOKEN_TTL_S = 2.0
MAX_TOKEN_BYTES = 512
"""Longer Authorization values are refused without a store lookup."""


class TokenCache:
    """An LRU of tokens the store recognised: token -> (team, admin), each for at most `ttl_s`."""

    def __init__(self, size: int = MAX_CACHED_TOKENS, ttl_s: float = TOKEN_TTL_S) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[str, bool, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> tuple[str, bool] | None:
        """The cached identity of `token`, or None when it is not cached (or its entry is too old)."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if time.monotonic() - entry[2] > self.ttl_s:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry[0], entry[1]

    def put(self, token: str, identity: tuple[str, bool]) -> None:
        """Remember a token the store recognised, dropping the least recently used beyond `size`."""
        self._entries[token] = (identity[0], identity[1], time.monotonic())
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every token (one was revoked here: it stops working at once in this process)."""
        self._entries.clear()


def bearer_token(authorization: bytes) -> str:
    """The token of an `Authorization: Bearer TOKEN` value, or '' when there is none or it is too long."""
    if authorization[:7].lower() != b"bearer " or len(authorization) > MAX_TOKEN_BYTES + 7:
        return ""
    return authorization[7:].decode("latin-1").strip()


__all__ = ["MAX_CACHED_TOKENS", "MAX_TOKEN_BYTES", "TOKEN_TTL_S", "TokenCache", "bearer_token"]
