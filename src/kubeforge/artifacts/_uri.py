"""Artifact URIs: local paths (plain or ``file://``), ``s3://bucket/key`` and ``gs://bucket/key``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kubeforge.errors import ArtifactError

_REMOTE_SCHEMES = ("s3", "gs")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Remote:
    """A parsed ``s3://`` or ``gs://`` URI."""

    scheme: str
    bucket: str
    key: str
    uri: str


def _scheme(uri: str) -> str | None:
    match = _SCHEME_RE.match(uri)
    return match.group(1).lower() if match else None


def is_remote(uri: str) -> bool:
    """True for ``s3://`` and ``gs://`` URIs, False for local paths (plain or ``file://``).

    Raises ArtifactError for any other ``scheme://`` so that it is never mistaken for a local path.
    """
    scheme = _scheme(uri)
    if scheme is None or scheme == "file":
        return False
    if scheme in _REMOTE_SCHEMES:
        return True
    raise ArtifactError(
        f"{uri}: unsupported URI scheme {scheme!r}; use a local path, s3://bucket/key or gs://bucket/key"
    )


def local_path(uri: str) -> Path:
    """The local path a plain path or ``file://`` URI names."""
    if _scheme(uri) == "file":
        return Path(uri[len("file://") :])
    return Path(uri)


def _parse_remote(uri: str) -> Remote:
    scheme = _scheme(uri)
    assert scheme is not None
    bucket, _, key = uri[len(scheme) + 3 :].partition("/")
    if not bucket:
        raise ArtifactError(f"{uri}: no bucket in the URI; write it as {scheme}://bucket/key")
    return Remote(scheme=scheme, bucket=bucket, key=key, uri=uri)


def remote_object(uri: str) -> Remote:
    """Parse a remote URI that must name one object (a non-empty key not ending in ``/``)."""
    remote = _parse_remote(uri)
    if not remote.key or remote.key.endswith("/"):
        raise ArtifactError(f"{uri}: names no object; write it as {remote.scheme}://{remote.bucket}/path/to/object")
    return remote


def remote_prefix(uri: str) -> tuple[Remote, str]:
    """Parse a remote URI that names a directory; returns it with its key prefix, ending in ``/``."""
    remote = _parse_remote(uri)
    key = remote.key.strip("/")
    if not key:
        raise ArtifactError(
            f"{uri}: a directory needs a key prefix, not a whole bucket; "
            f"write it as {remote.scheme}://{remote.bucket}/path/to/dir"
        )
    return remote, key + "/"
