"""GCS through google-cloud-storage (``pip install 'kubeforge[gcp]'``).

``GOOGLE_CLOUD_PROJECT`` picks the project; ``STORAGE_EMULATOR_HOST`` switches to an emulator, which
is used with anonymous credentials.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import IO, Any

from kubeforge.artifacts._store import ObjectStore
from kubeforge.artifacts._uri import Remote
from kubeforge.errors import ArtifactError

_CONTENT_TYPE = "application/octet-stream"


class GCSStore(ObjectStore):
    """One GCS bucket via a google-cloud-storage client."""

    def __init__(self, remote: Remote) -> None:
        try:
            import google.api_core.exceptions
            import google.auth.exceptions

            # Imported by name: mypy resolves google.cloud's namespace packages differently from
            # one environment to the next, and the client is used untyped either way.
            storage = importlib.import_module("google.cloud.storage")
        except ImportError as exc:
            raise ArtifactError(
                f"{remote.uri}: gs:// URIs need google-cloud-storage; install it with pip install 'kubeforge[gcp]'"
            ) from exc
        super().__init__(remote)
        self._api: Any = google.api_core.exceptions
        self._auth: Any = google.auth.exceptions
        with self._errors("", "connect"):
            project = os.environ.get("GOOGLE_CLOUD_PROJECT")
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                anonymous: Any = AnonymousCredentials  # untyped in google-auth
                self._client: Any = storage.Client(project=project, credentials=anonymous())
            else:
                self._client = storage.Client(project=project)
            self._bucket: Any = self._client.bucket(remote.bucket)

    def _translate(self, exc: Exception, key: str, action: str) -> ArtifactError | None:
        api, auth = self._api, self._auth
        where = self._where(key)
        if isinstance(exc, auth.DefaultCredentialsError):
            return ArtifactError(
                f"{where}: cannot {action}: no Google Cloud credentials found; set GOOGLE_APPLICATION_CREDENTIALS, "
                "run 'gcloud auth application-default login', or run with a service account"
            )
        if isinstance(exc, auth.GoogleAuthError):
            return ArtifactError(f"{where}: cannot {action}: Google Cloud credentials failed: {exc}")
        if isinstance(exc, api.NotFound):
            return self._not_found(key)
        if isinstance(exc, (api.Forbidden, api.Unauthorized)):
            return self._denied(key, action, exc.code, "Google Cloud")
        if isinstance(exc, api.GoogleAPIError):
            return ArtifactError(f"{where}: cannot {action}: {exc}")
        if isinstance(exc, OSError):  # requests' connection errors; local files are opened outside the block
            return ArtifactError(
                f"{where}: cannot {action}: {exc}; check the network (or STORAGE_EMULATOR_HOST for an emulator)"
            )
        return None

    def _bucket_exists(self) -> bool:
        return bool(self._bucket.exists())

    def _object_exists(self, key: str) -> bool:
        return bool(self._bucket.blob(key).exists())

    def _get(self, key: str) -> bytes:
        data: bytes = self._bucket.blob(key).download_as_bytes()
        return data

    def _put(self, key: str, data: bytes) -> None:
        self._bucket.blob(key).upload_from_string(data, content_type=_CONTENT_TYPE)

    def _upload(self, source: IO[bytes], key: str) -> None:
        # Large files go up as a resumable upload, which GCS publishes only once it is finalized.
        self._bucket.blob(key).upload_from_file(source, content_type=_CONTENT_TYPE)

    def _download(self, key: str, destination: IO[bytes]) -> None:
        self._bucket.blob(key).download_to_file(destination)

    def _list(self, prefix: str) -> list[str]:
        return [str(blob.name) for blob in self._client.list_blobs(self.remote.bucket, prefix=prefix)]

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(self._api.NotFound):
                self._bucket.blob(key).delete()
