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

The package is split by concept: ``_uri`` (parsing), ``_local`` (local files and directories),
``_store`` (the per-backend interface), ``_s3`` and ``_gcs`` (the backends) and ``_remote`` (the
marker protocol); this module holds the public functions, which dispatch on the URI's scheme.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kubeforge.artifacts._local import (
    copy_dir,
    local_error,
    publish_dir,
    publish_file,
    refuse_directory,
    refuse_file_in_the_way,
    refuse_symlinks,
    sibling_temp_dir,
    write_file,
)
from kubeforge.artifacts._remote import COMPLETE_MARKER, download_tree, open_store, upload_file, upload_tree
from kubeforge.artifacts._uri import is_remote, local_path, remote_object, remote_prefix
from kubeforge.errors import ArtifactError


def read_bytes(uri: str) -> bytes:
    """Read a whole file or object; ArtifactError names the URI when it is missing or unreadable."""
    if is_remote(uri):
        remote = remote_object(uri)
        return open_store(remote).get(remote.key)
    path = local_path(uri)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise local_error(path, "read", exc) from exc


def read_text(uri: str) -> str:
    """Read a whole file or object as UTF-8 text."""
    data = read_bytes(uri)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(
            f"{uri}: not UTF-8 text ({exc.reason} at byte {exc.start}); is this the right file?"
        ) from exc


def download_file(uri: str, destination: Path) -> None:
    """Stream the remote object at ``uri`` into the local file ``destination`` (created or replaced)."""
    remote = remote_object(uri)
    with destination.open("wb") as handle:
        open_store(remote).download(remote.key, handle)


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` atomically: a local temp file + fsync + rename, or one remote put.

    Local parent directories are created.
    """
    if is_remote(uri):
        remote = remote_object(uri)
        open_store(remote).put(remote.key, data)
        return
    write_file(local_path(uri), data)


def write_text(uri: str, text: str) -> None:
    """Write ``text`` as UTF-8, atomically (see :func:`write_bytes`)."""
    write_bytes(uri, text.encode("utf-8"))


def exists(uri: str) -> bool:
    """Whether the file or object exists; a missing remote bucket is an ArtifactError, not False."""
    if is_remote(uri):
        remote = remote_object(uri)
        return open_store(remote).exists(remote.key)
    return local_path(uri).exists()


@contextlib.contextmanager
def atomic_output(uri: str) -> Iterator[Path]:
    """Yield a local path to write ONE file into; it is published to ``uri`` only if the block succeeds.

    The path does not exist yet and keeps the target's file name (some writers look at the suffix).
    On normal exit the file is moved into place with ``os.replace`` (local) or uploaded (remote); if
    the block raises, the temporary file is removed and nothing is published.
    """
    remote = remote_object(uri) if is_remote(uri) else None
    if remote is None:
        target = local_path(uri)
        refuse_directory(target)
        workdir = sibling_temp_dir(target, "tmp")
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
            publish_file(staged, target)
        else:
            upload_file(open_store(remote), staged, remote.key)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(uri: str) -> Iterator[Path]:
    """Yield an empty local directory; the whole directory is published to ``uri`` only on success.

    Locally it is a sibling temp directory renamed into place (an existing directory is renamed
    aside, the new one renamed in, then the old one removed). Remotely every file is uploaded under
    the prefix, stale objects from an earlier upload are deleted, and ``_KUBEFORGE_COMPLETE`` is
    written last. If the block or the publish fails, nothing is published (uploaded objects are
    deleted again, best effort). Only regular files are published: a symbolic link is refused,
    naming it.
    """
    if is_remote(uri):
        remote_prefix(uri)  # validate before running the caller's block
        with tempfile.TemporaryDirectory(prefix="kubeforge-out-") as tmp:
            staged = Path(tmp) / "out"
            staged.mkdir()
            yield staged
            upload_tree(staged, uri)
        return
    target = local_path(uri)
    refuse_file_in_the_way(target)
    built = sibling_temp_dir(target, "tmp")
    try:
        yield built
        refuse_symlinks(built)
        publish_dir(built, target)
    finally:
        shutil.rmtree(built, ignore_errors=True)


def upload_dir(local_dir: Path, uri: str) -> None:
    """Publish the directory ``local_dir`` to ``uri`` with the semantics of :func:`atomic_output_dir`."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise ArtifactError(f"{local_dir}: not a directory; pass the directory to upload to {uri}")
    if is_remote(uri):
        upload_tree(local_dir, uri)
    else:
        copy_dir(local_dir, local_path(uri))


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
        source = local_path(uri)
        if not source.is_dir():
            raise ArtifactError(f"{source}: no such directory; check the path or write the artifact first")
        copy_dir(source, target)
        return target
    remote_prefix(uri)
    built = sibling_temp_dir(target, "download")
    try:
        download_tree(uri, built)
        publish_dir(built, target)
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
        path = local_path(uri)
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
    "download_file",
    "exists",
    "is_remote",
    "local_dir",
    "read_bytes",
    "read_text",
    "upload_dir",
    "write_bytes",
    "write_text",
]
