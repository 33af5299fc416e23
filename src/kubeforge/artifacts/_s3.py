"""S3 through boto3 (``pip install 'kubeforge[aws]'``).

The endpoint, credentials and region come from boto3's own configuration (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, an IAM role, ...).
"""

from __future__ import annotations

from typing import IO, Any

from kubeforge.artifacts._store import ObjectStore
from kubeforge.artifacts._uri import Remote
from kubeforge.errors import ArtifactError

_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_DENIED = ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store(ObjectStore):
    """One S3 bucket via a boto3 client."""

    delete_batch = 1000  # the most keys one DeleteObjects request takes

    def __init__(self, remote: Remote) -> None:
        try:
            import boto3
            import botocore.exceptions
        except ImportError as exc:
            raise ArtifactError(
                f"{remote.uri}: s3:// URIs need boto3; install it with pip install 'kubeforge[aws]'"
            ) from exc
        super().__init__(remote)
        self._exceptions: Any = botocore.exceptions
        self._client: Any = boto3.session.Session().client("s3")

    def _translate(self, exc: Exception, key: str, action: str) -> ArtifactError | None:
        exceptions = self._exceptions
        where = self._where(key)
        if isinstance(exc, exceptions.NoCredentialsError):
            return ArtifactError(
                f"{where}: cannot {action}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, or run with an IAM role"
            )
        if isinstance(exc, exceptions.ClientError):
            code = _code(exc)
            if code == "NoSuchBucket":
                return self._missing_bucket(key)
            if code in _NOT_FOUND:
                return self._not_found(key)
            if code in _DENIED:
                return self._denied(key, action, code, "AWS")
            message = exc.response.get("Error", {}).get("Message", exc)
            return ArtifactError(f"{where}: cannot {action}: {code or 'error'}: {message}")
        if isinstance(exc, exceptions.BotoCoreError):
            return ArtifactError(f"{where}: cannot {action}: {exc}; check AWS_ENDPOINT_URL and the network")
        return None

    def _bucket_exists(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self.remote.bucket)
        except self._exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchBucket", *_NOT_FOUND):
                return False
            raise
        return True

    def _object_exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.remote.bucket, Key=key)
        except self._exceptions.ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    def _get(self, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=self.remote.bucket, Key=key)["Body"].read()
        return body

    def _put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.remote.bucket, Key=key, Body=data)

    def _upload(self, source: IO[bytes], key: str) -> None:
        # Large files go up as a multipart upload, which S3 publishes only once it is completed.
        self._client.upload_fileobj(source, self.remote.bucket, key)

    def _download(self, key: str, destination: IO[bytes]) -> None:
        self._client.download_fileobj(self.remote.bucket, key, destination)

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.remote.bucket, Prefix=prefix):
            keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        return keys

    def _delete(self, keys: list[str]) -> None:
        response = self._client.delete_objects(
            Bucket=self.remote.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise ArtifactError(
                f"{self._where(str(first.get('Key')))}: cannot delete: {first.get('Code')}: "
                f"{first.get('Message')} ({len(errors)} object(s) not deleted); check the permissions"
            )
