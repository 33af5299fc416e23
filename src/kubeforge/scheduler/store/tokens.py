"""Bearer tokens in the store: only a SHA-256 of each token is kept, with a public id (a prefix of that
hash) to list and revoke it by, an optional expiry, and a mark on the admin token read from the
environment, which the next start replaces."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from kubeforge.errors import InputError

TOKEN_ID_LENGTH = 16
"""Hex characters of the token's hash that name it in listings and revocations."""
MIN_TOKEN_LENGTH = 16
_COLUMNS = "token_id, team, admin, created_at, expires_at, from_env"


@dataclass(frozen=True)
class TokenInfo:
    """What a listing shows of a token: never the token itself."""

    id: str
    team: str
    admin: bool
    created_at: float
    expires_at: float | None
    from_env: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "team": self.team,
            "admin": self.admin,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "from_environment": self.from_env,
        }


class TokenStore(ABC):
    """Token operations of a store (mixed into SqlStore)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A cursor inside one write transaction."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Any]:
        """A cursor inside one read transaction."""

    def add_token(
        self, token: str, team: str, admin: bool = False, expires_at: float | None = None, from_env: bool = False
    ) -> str:
        """Bind a bearer token to a team (an admin token manages queues and tokens); returns its public id."""
        if len(token) < MIN_TOKEN_LENGTH:
            raise InputError(f"token: use at least {MIN_TOKEN_LENGTH} characters")
        digest = token_hash(token)
        with self.transaction() as cur:
            cur.execute("DELETE FROM tokens WHERE token_hash = ?", (digest,))
            if from_env:
                cur.execute("DELETE FROM tokens WHERE from_env = 1")
            cur.execute(
                "INSERT INTO tokens (token_hash, token_id, team, admin, created_at, expires_at, from_env) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest, digest[:TOKEN_ID_LENGTH], team, int(admin), time.time(), expires_at, int(from_env)),
            )
        return digest[:TOKEN_ID_LENGTH]

    def identify(self, token: str) -> tuple[str, bool] | None:
        """The (team, admin) a token is bound to, or None (unknown, revoked or expired)."""
        with self.read() as cur:
            row = cur.execute(
                "SELECT team, admin FROM tokens WHERE token_hash = ? AND (expires_at IS NULL OR expires_at > ?)",
                (token_hash(token), time.time()),
            ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def list_tokens(self, team: str | None = None) -> list[TokenInfo]:
        """Every token (or one team's), oldest first; expired ones too, until revoked."""
        where, params = ("WHERE team = ?", (team,)) if team is not None else ("", ())
        with self.read() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM tokens {where} ORDER BY created_at, token_id", params)
            found = rows.fetchall()
        return [TokenInfo(str(r[0]), str(r[1]), bool(r[2]), float(r[3]), r[4], bool(r[5])) for r in found]

    def revoke_token(self, token_id: str) -> bool:
        """Delete the token with this public id; False when there is none."""
        with self.transaction() as cur:
            found = cur.execute("DELETE FROM tokens WHERE token_id = ? RETURNING token_id", (token_id,)).fetchone()
        return found is not None


def token_hash(token: str) -> str:
    """The SHA-256 the store keeps in place of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


__all__ = ["MIN_TOKEN_LENGTH", "TOKEN_ID_LENGTH", "TokenInfo", "TokenStore", "token_hash"]
