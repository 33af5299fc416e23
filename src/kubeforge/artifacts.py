"""Artifact I/O over local paths, ``s3://bucket/key`` and ``gs://bucket/key``.

Every write is atomic: a write that fails leaves no partial file or object behind.

* Local files are written to a temporary file in the same directory, fsynced and moved into place
  with :func:`os.replace`; local directories are built in a sibling temporary directory and renamed
  into place (an existing directory is moved aside first and removed only after the swap).
* A remote object is written with a single put/upload, which S3 and GCS publish all at once.
* A remote directory is a key prefix: every file is uploaded first and the marker object
  ``_KUBEFORGE_COMPLETE`` (a JSON list of the files) last. Readers refuse a prefix without the marker,
  so a half-finished or failed upload is never mistaken for a complete one.

The storage clients are created lazily: ``boto3`` (``pip install 'kubeforge[aws]'``) for S3 and
``google-cloud-storage`` (``pip install 'kubeforge[gcp]'``) for GCS. Endpoints come from the clients'
own settings: boto3 honours ``AWS_ENDPOINT_URL`` and google-cloud-storage honours
``STORAGE_EMULATOR_HOST`` (anonymous credentials are used with an emulator).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from kubeforge.errors import ArtifactError

COMPLETE_MARKER = "_KUBEFORGE_COMPLETE"
"""Name of the object written last under a remote directory prefix; its presence means 'complete'."""

_MARKER_FORMAT = "kubeforge-dir"
_REMOTE_SCHEMES = ("s3", "gs")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_S3_DELETE_BATCH = 1000


# --------------------------------------------------------------------------------------------------
# URIs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Remote:
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


def _local_path(uri: str) -> Path:
    if _scheme(uri) == "file":
        return Path(uri[len("file://") :])
    return Path(uri)


def _parse_remote(uri: str) -> _Remote:
    scheme = _scheme(uri)
    assert scheme is not None
    bucket, _, key = uri[len(scheme) + 3 :].partition("/")
    if not bucket:
        raise ArtifactError(f"{uri}: no bucket in the URI; write it as {scheme}://bucket/key")
    return _Remote(scheme=scheme, bucket=bucket, key=key, uri=uri)


def _remote_object(uri: str) -> _Remote:
    remote = _parse_remote(uri)
    if not remote.key or remote.key.endswith("/"):
        raise ArtifactError(f"{uri}: names no object; write it as {remote.scheme}://{remote.bucket}/path/to/object")
    return remote


def _remote_prefix(uri: str) -> tuple[_Remote, str]:
    remote = _parse_remote(uri)
    key = remote.key.strip("/")
    if not key:
        raise ArtifactError(
            f"{uri}: a directory needs a key prefix, not a whole bucket; "
            f"write it as {remote.scheme}://{remote.bucket}/path/to/dir"
        )
    return remote, key + "/"


# --------------------------------------------------------------------------------------------------
# Storage backends
# --------------------------------------------------------------------------------------------------


class _Store(Protocol):
    """The few storage operations this module needs, implemented for S3 and GCS."""

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes) -> None: ...

    def upload(self, source: IO[bytes], key: str) -> None: ...

    def download(self, key: str, destination: IO[bytes]) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: list[str]) -> None: ...


def _missing_bucket(remote: _Remote, key: str) -> ArtifactError:
    return ArtifactError(
        f"{remote.scheme}://{remote.bucket}/{key}: bucket {remote.bucket!r} does not exist; "
        "create it or fix the bucket name in the URI"
    )


def _not_found(remote: _Remote, key: str, bucket_exists: Callable[[], bool]) -> ArtifactError:
    """Say whether the bucket or the object is missing (checking the bucket costs one request)."""
    try:
        has_bucket = bucket_exists()
    except Exception:  # the object is missing either way; the bucket check only refines the message
        has_bucket = True
    if not has_bucket:
        return _missing_bucket(remote, key)
    return ArtifactError(
        f"{remote.scheme}://{remote.bucket}/{key}: object not found; check the URI or write the artifact first"
    )


_S3_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_S3_DENIED = ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled")


class _S3Store:
    """S3 via boto3; the endpoint, credentials and region come from boto3's own configuration."""

    def __init__(self, remote: _Remote) -> None:
        try:
            import boto3
            import botocore.exceptions
        except ImportError as exc:
            raise ArtifactError(
                f"{remote.uri}: s3:// URIs need boto3; install it with pip install 'kubeforge[aws]'"
            ) from exc
        self.remote = remote
        self.bucket = remote.bucket
        self._exceptions: Any = botocore.exceptions
        self.client: Any = boto3.session.Session().client("s3")

    @staticmethod
    def _code(exc: Any) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        exceptions = self._exceptions
        where = f"s3://{self.bucket}/{key}"
        try:
            yield
        except exceptions.NoCredentialsError as exc:
            raise ArtifactError(
                f"{where}: cannot {action}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, or run with an IAM role"
            ) from exc
        except exceptions.ClientError as exc:
            code = self._code(exc)
            if code == "NoSuchBucket":
                raise _missing_bucket(self.remote, key) from exc
            if code in _S3_NOT_FOUND:
                raise _not_found(self.remote, key, self._bucket_exists) from exc
            if code in _S3_DENIED:
                raise ArtifactError(
                    f"{where}: cannot {action}: access denied ({code}); check the AWS credentials and that "
                    f"they may access bucket {self.bucket!r}"
                ) from exc
            message = exc.response.get("Error", {}).get("Message", exc)
            raise ArtifactError(f"{where}: cannot {action}: {code or 'error'}: {message}") from exc
        except exceptions.BotoCoreError as exc:
            raise ArtifactError(f"{where}: cannot {action}: {exc}; check AWS_ENDPOINT_URL and the network") from exc

    def _bucket_exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._exceptions.ClientError as exc:
            if self._code(exc) in ("NoSuchBucket", *_S3_NOT_FOUND):
                return False
            raise
        return True

    def get(self, key: str) -> bytes:
        with self._errors(key, "read"):
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def put(self, key: str, data: bytes) -> None:
        with self._errors(key, "write"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def upload(self, source: IO[bytes], key: str) -> None:
        # Large files go up as a multipart upload, which S3 publishes only once it is completed.
        with self._errors(key, "upload"):
            self.client.upload_fileobj(source, self.bucket, key)

    def download(self, key: str, destination: IO[bytes]) -> None:
        with self._errors(key, "download"):
            self.client.download_fileobj(self.bucket, key, destination)

    def exists(self, key: str) -> bool:
        with self._errors(key, "check"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except self._exceptions.ClientError as exc:
                if self._code(exc) not in _S3_NOT_FOUND:
                    raise
                if not self._bucket_exists():
                    raise _missing_bucket(self.remote, key) from exc
                return False
        return True

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with self._errors(prefix, "list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        return keys

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _S3_DELETE_BATCH):
            batch = keys[start : start + _S3_DELETE_BATCH]
            with self._errors(batch[0], "delete"):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise ArtifactError(
                    f"s3://{self.bucket}/{first.get('Key')}: cannot delete: {first.get('Code')}: "
                    f"{first.get('Message')} ({len(errors)} object(s) not deleted); check the permissions"
                )


class _GCSStore:
    """GCS via google-cloud-storage; ``STORAGE_EMULATOR_HOST`` switches to an emulator, anonymously."""

    def __init__(self, remote: _Remote) -> None:
        try:
            import google.api_core.exceptions
            import google.auth.exceptions
            from google.cloud import storage
        except ImportError as exc:
            raise ArtifactError(
                f"{remote.uri}: gs:// URIs need google-cloud-storage; install it with pip install 'kubeforge[gcp]'"
            ) from exc
        self.remote = remote
        self._api: Any = google.api_core.exceptions
        self._auth: Any = google.auth.exceptions
        with self._errors("", "connect"):
            project = os.environ.get("GOOGLE_CLOUD_PROJECT")
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                anonymous: Any = AnonymousCredentials  # untyped in google-auth
                self.client: Any = storage.Client(project=project, credentials=anonymous())
            else:
                self.client = storage.Client(project=project)
            self.bucket: Any = self.client.bucket(remote.bucket)

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        api, auth = self._api, self._auth
        where = f"gs://{self.remote.bucket}/{key}"
        try:
            yield
        except auth.DefaultCredentialsError as exc:
            raise ArtifactError(
                f"{where}: cannot {action}: no Google Cloud credentials found; set GOOGLE_APPLICATION_CREDENTIALS, "
                "run 'gcloud auth application-default login', or run with a service account"
            ) from exc
        except auth.GoogleAuthError as exc:
            raise ArtifactError(f"{where}: cannot {action}: Google Cloud credentials failed: {exc}") from exc
        except api.NotFound as exc:
            raise _not_found(self.remote, key, self._bucket_exists) from exc
        except (api.Forbidden, api.Unauthorized) as exc:
            raise ArtifactError(
                f"{where}: cannot {action}: access denied ({exc.code}); check the Google Cloud credentials and "
                f"that they may access bucket {self.remote.bucket!r}"
            ) from exc
        except api.GoogleAPIError as exc:
            raise ArtifactError(f"{where}: cannot {action}: {exc}") from exc
        except OSError as exc:  # requests' connection errors; local files are opened outside this block
            raise ArtifactError(
                f"{where}: cannot {action}: {exc}; check the network (or STORAGE_EMULATOR_HOST for an emulator)"
            ) from exc

    def _bucket_exists(self) -> bool:
        return bool(self.bucket.exists())

    def get(self, key: str) -> bytes:
        with self._errors(key, "read"):
            data: bytes = self.bucket.blob(key).download_as_bytes()
        return data

    def put(self, key: str, data: bytes) -> None:
        with self._errors(key, "write"):
            self.bucket.blob(key).upload_from_string(data, content_type="application/octet-stream")

    def upload(self, source: IO[bytes], key: str) -> None:
        # Large files go up as a resumable upload, which GCS publishes only once it is finalized.
        with self._errors(key, "upload"):
            self.bucket.blob(key).upload_from_file(source, content_type="application/octet-stream")

    def download(self, key: str, destination: IO[bytes]) -> None:
        with self._errors(key, "download"):
            self.bucket.blob(key).download_to_file(destination)

    def exists(self, key: str) -> bool:
        with self._errors(key, "check"):
            if self.bucket.blob(key).exists():
                return True
            has_bucket = self._bucket_exists()
        if not has_bucket:
            raise _missing_bucket(self.remote, key)
        return False

    def list_keys(self, prefix: str) -> list[str]:
        with self._errors(prefix, "list"):
            return [str(blob.name) for blob in self.client.list_blobs(self.remote.bucket, prefix=prefix)]

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            with self._errors(key, "delete"), contextlib.suppress(self._api.NotFound):
                self.bucket.blob(key).delete()


def _store(remote: _Remote) -> _Store:
    if remote.scheme == "s3":
        return _S3Store(remote)
    return _GCSStore(remote)


# --------------------------------------------------------------------------------------------------
# Local helpers
# --------------------------------------------------------------------------------------------------


def _local_error(path: Path, action: str, exc: OSError) -> ArtifactError:
    if isinstance(exc, FileNotFoundError):
        return ArtifactError(f"{path}: cannot {action}: no such file or directory; check the path")
    if isinstance(exc, PermissionError):
        return ArtifactError(f"{path}: cannot {action}: permission denied; check the file's owner and mode")
    if isinstance(exc, IsADirectoryError):
        return ArtifactError(f"{path}: cannot {action}: it is a directory, expected a file")
    return ArtifactError(f"{path}: cannot {action}: {exc.strerror or exc}")


def _fsync_dir(path: Path) -> None:
    """Persist a rename in ``path`` (best effort: some filesystems refuse to fsync a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _ensure_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _local_error(parent, "create the directory", exc) from exc
    return parent


def _sibling_temp_dir(path: Path, tag: str) -> Path:
    """A new empty directory next to ``path`` (same filesystem, so a rename out of it is atomic)."""
    parent = _ensure_parent(path)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=f".{tag}", dir=parent))
    except OSError as exc:
        raise _local_error(parent, "create a temporary directory", exc) from exc


def _write_local(path: Path, data: bytes) -> None:
    parent = _ensure_parent(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: cannot write: it is a directory, expected a file path")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise _local_error(parent, "create a temporary file", exc) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _local_error(path, "write", exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)


def _refuse_file_in_the_way(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ArtifactError(
            f"{target}: cannot publish a directory: a file is in the way; remove it or pick another path"
        )


def _publish_local_dir(built: Path, target: Path) -> None:
    """Move the finished directory ``built`` to ``target``, replacing an existing directory safely.

    The old directory is renamed aside, the new one renamed in, and only then the old one removed; if
    the second rename fails the old directory is put back.
    """
    _refuse_file_in_the_way(target)
    aside: Path | None = None
    if target.exists():
        aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        try:
            os.rename(target, aside)
        except OSError as exc:
            raise _local_error(target, "move the existing directory aside", exc) from exc
    try:
        os.rename(built, target)
    except OSError as exc:
        if aside is not None:
            try:
                os.rename(aside, target)
            except OSError:
                raise ArtifactError(
                    f"{target}: cannot publish the directory ({exc.strerror or exc}) nor put the previous one "
                    f"back; it is kept at {aside}: move it back by hand"
                ) from exc
        raise _local_error(target, "publish the directory", exc) from exc
    _fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _files_under(root: Path) -> list[str]:
    """Relative POSIX paths of every file under ``root``, sorted (symlinks are followed, like a copy)."""
    found: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
        base = Path(dirpath)
        found.extend((base / name).relative_to(root).as_posix() for name in filenames)
    return sorted(found)


def _copy_local_dir(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (built in a sibling temp dir, then renamed in)."""
    if not source.is_dir():
        raise ArtifactError(f"{source}: not a directory; pass the directory to copy")
    built = _sibling_temp_dir(target, "tmp")
    try:
        shutil.copytree(source, built, dirs_exist_ok=True)
        os.chmod(built, _DIR_MODE)
        _publish_local_dir(built, target)
    except OSError as exc:
        shutil.rmtree(built, ignore_errors=True)
        raise _local_error(target, "copy the directory", exc) from exc
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------------
# Remote directories
# --------------------------------------------------------------------------------------------------


def _upload_path(store: _Store, path: Path, key: str) -> None:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; open errors are local, not storage, errors
    except OSError as exc:
        raise _local_error(path, "upload", exc) from exc
    with handle:
        store.upload(handle, key)


def _download_path(store: _Store, key: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115 - closed below; open errors are local, not storage, errors
    except OSError as exc:
        raise _local_error(path, "create the file", exc) from exc
    with handle:
        store.download(key, handle)


def _upload_tree(local: Path, uri: str) -> None:
    """Upload every file under ``local`` to the prefix ``uri``, then the marker; undo on failure."""
    remote, prefix = _remote_prefix(uri)
    files = _files_under(local)
    if COMPLETE_MARKER in files:
        raise ArtifactError(f"{local}: contains a file named {COMPLETE_MARKER}, which is reserved; rename it")
    store = _store(remote)
    marker_key = prefix + COMPLETE_MARKER
    existing = set(store.list_keys(prefix))
    # Readers must never see the marker while the prefix holds a mix of old and new files.
    if marker_key in existing:
        store.delete([marker_key])
    uploaded: list[str] = []
    try:
        for name in files:
            _upload_path(store, local / name, prefix + name)
            uploaded.append(prefix + name)
        stale = sorted(existing - set(uploaded) - {marker_key})
        if stale:
            store.delete(stale)
        manifest = {"format": _MARKER_FORMAT, "files": files}
        store.put(marker_key, json.dumps(manifest, indent=1).encode())
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: the original error is the one to report
            store.delete(uploaded)
        raise


def _listed_files(store: _Store, prefix: str, keys: list[str]) -> list[str]:
    """The files a complete prefix holds: those the marker lists, or every object if it lists none."""
    marker_key = prefix + COMPLETE_MARKER
    try:
        manifest = json.loads(store.get(marker_key))
        files = manifest["files"]
        if manifest.get("format") == _MARKER_FORMAT and isinstance(files, list):
            return [str(name) for name in files]
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return [key[len(prefix) :] for key in keys if key != marker_key]


def _download_tree(uri: str, target: Path) -> None:
    """Download a complete prefix into the existing directory ``target``."""
    remote, prefix = _remote_prefix(uri)
    store = _store(remote)
    keys = store.list_keys(prefix)
    if not keys:
        raise ArtifactError(f"{uri}: no objects under this prefix; check the URI or write the artifact first")
    if prefix + COMPLETE_MARKER not in keys:
        raise ArtifactError(
            f"{uri}: the upload is incomplete ({COMPLETE_MARKER} is missing: the upload failed or is still "
            "running); re-run the step that writes this artifact"
        )
    files = _listed_files(store, prefix, keys)
    present = set(keys)
    missing = [name for name in files if prefix + name not in present]
    if missing:
        raise ArtifactError(
            f"{uri}: the upload is incomplete: {len(missing)} file(s) listed in {COMPLETE_MARKER} are missing "
            f"(first: {missing[0]}); re-run the step that writes this artifact"
        )
    root = target.resolve()
    for name in files:
        destination = (root / name).resolve()
        if destination == root or not destination.is_relative_to(root):
            raise ArtifactError(f"{uri}: refusing object {name!r}: it would be written outside {target}")
        _download_path(store, prefix + name, destination)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def read_bytes(uri: str) -> bytes:
    """Read a whole file or object; ArtifactError names the URI when it is missing or unreadable."""
    if is_remote(uri):
        remote = _remote_object(uri)
        return _store(remote).get(remote.key)
    path = _local_path(uri)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _local_error(path, "read", exc) from exc


def read_text(uri: str) -> str:
    """Read a whole file or object as UTF-8 text."""
    data = read_bytes(uri)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(
            f"{uri}: not UTF-8 text ({exc.reason} at byte {exc.start}); is this the right file?"
        ) from exc


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` atomically: a local temp file + fsync + rename, or one remote put.

    Local parent directories are created.
    """
    if is_remote(uri):
        remote = _remote_object(uri)
        _store(remote).put(remote.key, data)
        return
    _write_local(_local_path(uri), data)


def write_text(uri: str, text: str) -> None:
    """Write ``text`` as UTF-8, atomically (see :func:`write_bytes`)."""
    write_bytes(uri, text.encode("utf-8"))


def exists(uri: str) -> bool:
    """Whether the file or object exists; a missing remote bucket is an ArtifactError, not False."""
    if is_remote(uri):
        remote = _remote_object(uri)
        return _store(remote).exists(remote.key)
    return _local_path(uri).exists()


@contextlib.contextmanager
def atomic_output(uri: str) -> Iterator[Path]:
    """Yield a local path to write ONE file into; it is published to ``uri`` only if the block succeeds.

    The path does not exist yet and keeps the target's file name (some writers look at the suffix).
    On normal exit the file is moved into place with ``os.replace`` (local) or uploaded (remote); if
    the block raises, the temporary file is removed and nothing is published.
    """
    remote = _remote_object(uri) if is_remote(uri) else None
    if remote is None:
        target = _local_path(uri)
        if target.is_dir():
            raise ArtifactError(f"{target}: cannot write: it is a directory, expected a file path")
        workdir = _sibling_temp_dir(target, "tmp")
        name = target.name
    else:
        workdir = Path(tempfile.mkdtemp(prefix="kubeforge-out-"))
        name = remote.key.rsplit("/", 1)[-1]
    staged = workdir / name
    try:
        yield staged
        if not staged.is_file():
            raise ArtifactError(f"{uri}: nothing was written to {staged.name!r} inside the atomic_output block")
        if remote is None:
            try:
                _fsync_file(staged)
                os.chmod(staged, _FILE_MODE)
                os.replace(staged, target)
            except OSError as exc:
                raise _local_error(target, "publish", exc) from exc
            _fsync_dir(target.parent)
        else:
            _upload_path(_store(remote), staged, remote.key)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(uri: str) -> Iterator[Path]:
    """Yield an empty local directory; the whole directory is published to ``uri`` only on success.

    Locally it is a sibling temp directory renamed into place (an existing directory is renamed
    aside, the new one renamed in, then the old one removed). Remotely every file is uploaded under
    the prefix, stale objects from an earlier upload are deleted, and ``_KUBEFORGE_COMPLETE`` is
    written last. If the block or the publish fails, nothing is published (uploaded objects are
    deleted again, best effort).
    """
    if is_remote(uri):
        _remote_prefix(uri)  # validate before running the caller's block
        with tempfile.TemporaryDirectory(prefix="kubeforge-out-") as tmp:
            staged = Path(tmp) / "out"
            staged.mkdir()
            yield staged
            _upload_tree(staged, uri)
        return
    target = _local_path(uri)
    _refuse_file_in_the_way(target)
    built = _sibling_temp_dir(target, "tmp")
    try:
        yield built
        os.chmod(built, _DIR_MODE)
        _publish_local_dir(built, target)
    finally:
        shutil.rmtree(built, ignore_errors=True)


def upload_dir(local_dir: Path, uri: str) -> None:
    """Publish the directory ``local_dir`` to ``uri`` with the semantics of :func:`atomic_output_dir`."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise ArtifactError(f"{local_dir}: not a directory; pass the directory to upload to {uri}")
    if is_remote(uri):
        _upload_tree(local_dir, uri)
    else:
        _copy_local_dir(local_dir, _local_path(uri))


def download_dir(uri: str, local_dir: Path) -> Path:
    """Copy the directory at ``uri`` to ``local_dir`` (which must be absent or empty) and return it.

    A remote prefix without ``_KUBEFORGE_COMPLETE`` is refused: its upload failed or is still running.
    The copy is built in a sibling temporary directory and renamed into place, so a failed download
    leaves nothing behind.
    """
    target = Path(local_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ArtifactError(f"{target}: download target must be a new or empty directory; pick another path")
    if not is_remote(uri):
        source = _local_path(uri)
        if not source.is_dir():
            raise ArtifactError(f"{source}: no such directory; check the path or write the artifact first")
        _copy_local_dir(source, target)
        return target
    _remote_prefix(uri)
    built = _sibling_temp_dir(target, "download")
    try:
        _download_tree(uri, built)
        os.chmod(built, _DIR_MODE)
        _publish_local_dir(built, target)
    finally:
        shutil.rmtree(built, ignore_errors=True)
    return target


@contextlib.contextmanager
def local_dir(uri: str) -> Iterator[Path]:
    """Yield a local directory holding the directory at ``uri``.

    A local path is yielded as it is; a remote prefix is downloaded (see :func:`download_dir`) into a
    temporary directory that is removed when the block ends.
    """
    if not is_remote(uri):
        path = _local_path(uri)
        if not path.is_dir():
            raise ArtifactError(f"{path}: no such directory; check the path or write the artifact first")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="kubeforge-in-") as tmp:
        yield download_dir(uri, Path(tmp) / "artifact")


__all__ = [
    "COMPLETE_MARKER",
    "atomic_output",
    "atomic_output_dir",
    "download_dir",
    "exists",
    "is_remote",
    "local_dir",
    "read_bytes",
    "read_text",
    "upload_dir",
    "write_bytes",
    "write_text",
]
