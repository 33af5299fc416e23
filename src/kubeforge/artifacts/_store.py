"""The object-store interface that S3 and GCS implement, and the error handling they share.

:class:`ObjectStore` holds the operations the artifact functions need (get, put, upload, download,
exists, list, delete) and wraps each client call so that a storage failure surfaces as an
ArtifactError naming the URI, the action and the fix. A backend supplies only the raw client calls
and the translation of its client's exceptions.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import IO, ClassVar

from kubeforge.artifacts._uri import Remote
from kubeforge.errors import ArtifactError


class ObjectStore(abc.ABC):
    """One bucket of an object store, addressed by object key."""

    delete_batch: ClassVar[int] = 1
    """How many keys one :meth:`_delete` call removes at most."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    # ---- what a backend implements ------------------------------------------------------------

    @abc.abstractmethod
    def _get(self, key: str) -> bytes:
        """Return the object's bytes."""

    @abc.abstractmethod
    def _put(self, key: str, data: bytes) -> None:
        """Write the object in one request."""

    @abc.abstractmethod
    def _upload(self, source: IO[bytes], key: str) -> None:
        """Stream ``source`` into the object; it must be published only once complete."""

    @abc.abstractmethod
    def _download(self, key: str, destination: IO[bytes]) -> None:
        """Stream the object into ``destination``."""

    @abc.abstractmethod
    def _object_exists(self, key: str) -> bool:
        """Whether the object exists (False also when the bucket is missing)."""

    @abc.abstractmethod
    def _bucket_exists(self) -> bool:
        """Whether the bucket exists."""

    @abc.abstractmethod
    def _list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``."""

    @abc.abstractmethod
    def _delete(self, keys: list[str]) -> None:
        """Delete up to :attr:`delete_batch` objects; a missing object is not an error."""

    @abc.abstractmethod
    def _translate(self, exc: Exception, key: str, action: str) -> ArtifactError | None:
        """The ArtifactError to raise for the client's ``exc``, or None to let ``exc`` through."""

    # ---- shared error messages --------------------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"{self.remote.scheme}://{self.remote.bucket}/{key}"

    def _missing_bucket(self, key: str) -> ArtifactError:
        return ArtifactError(
            f"{self._where(key)}: bucket {self.remote.bucket!r} does not exist; "
            "create it or fix the bucket name in the URI"
        )

    def _not_found(self, key: str) -> ArtifactError:
        """Say whether the bucket or the object is missing (checking the bucket costs one request)."""
        try:
            has_bucket = self._bucket_exists()
        except Exception:  # the object is missing either way; the bucket check only refines the message
            has_bucket = True
        if not has_bucket:
            return self._missing_bucket(key)
        return ArtifactError(f"{self._where(key)}: object not found; check the URI or write the artifact first")

    def _denied(self, key: str, action: str, code: object, provider: str) -> ArtifactError:
        return ArtifactError(
            f"{self._where(key)}: cannot {action}: access denied ({code}); check the {provider} credentials and "
            f"that they may access bucket {self.remote.bucket!r}"
        )

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        """Turn the client's exceptions inside the block into ArtifactErrors (see :meth:`_translate`)."""
        try:
            yield
        except ArtifactError:
            raise
        except Exception as exc:
            error = self._translate(exc, key, action)
            if error is None:
                raise
            raise error from exc

    # ---- the operations ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Read a whole object."""
        with self._errors(key, "read"):
            return self._get(key)

    def put(self, key: str, data: bytes) -> None:
        """Write a whole object in one request, which the store publishes all at once."""
        with self._errors(key, "write"):
            self._put(key, data)

    def upload(self, source: IO[bytes], key: str) -> None:
        """Upload an open file to an object."""
        with self._errors(key, "upload"):
            self._upload(source, key)

    def download(self, key: str, destination: IO[bytes]) -> None:
        """Download an object into an open file."""
        with self._errors(key, "download"):
            self._download(key, destination)

    def exists(self, key: str) -> bool:
        """Whether the object exists; a missing bucket is an ArtifactError, not False."""
        with self._errors(key, "check"):
            if self._object_exists(key):
                return True
            has_bucket = self._bucket_exists()
        if not has_bucket:
            raise self._missing_bucket(key)
        return False

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        with self._errors(prefix, "list"):
            return self._list(prefix)

    def delete(self, keys: list[str]) -> None:
        """Delete the objects, in batches of :attr:`delete_batch`; missing objects are skipped."""
        for start in range(0, len(keys), self.delete_batch):
            batch = keys[start : start + self.delete_batch]
            with self._errors(batch[0], "delete"):
                self._delete(batch)
