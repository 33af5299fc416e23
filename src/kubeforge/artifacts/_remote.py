"""Remote directories: the completion-marker protocol, the same for every object store.

A remote directory is a key prefix. Every file is uploaded first and the marker object
``_KUBEFORGE_COMPLETE`` (a JSON list of the files) last; readers refuse a prefix without the marker,
so a half-finished or failed upload is never mistaken for a complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from kubeforge.artifacts._gcs import GCSStore
from kubeforge.artifacts._local import files_under, local_error, open_regular_file
from kubeforge.artifacts._s3 import S3Store
from kubeforge.artifacts._store import ObjectStore
from kubeforge.artifacts._uri import Remote, remote_prefix
from kubeforge.errors import ArtifactError

COMPLETE_MARKER = "_KUBEFORGE_COMPLETE"
"""Name of the object written last under a remote directory prefix; its presence means 'complete'."""

_MARKER_FORMAT = "kubeforge-dir"


def open_store(remote: Remote) -> ObjectStore:
    """The object store for the URI's scheme (its client library is imported here, lazily)."""
    if remote.scheme == "s3":
        return S3Store(remote)
    return GCSStore(remote)


def upload_file(store: ObjectStore, path: Path, key: str) -> None:
    """Upload the local file ``path`` to the object ``key``; a symbolic link is refused, naming it."""
    with os.fdopen(open_regular_file(path), "rb") as handle:
        store.upload(handle, key)


def _download_file(store: ObjectStore, key: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115 - closed below; open errors are local, not storage, errors
    except OSError as exc:
        raise local_error(path, "create the file", exc) from exc
    with handle:
        store.download(key, handle)


def upload_tree(local: Path, uri: str) -> None:
    """Upload every file under ``local`` to the prefix ``uri``, then the marker; undo on failure."""
    remote, prefix = remote_prefix(uri)
    files = files_under(local)
    if COMPLETE_MARKER in files:
        raise ArtifactError(f"{local}: contains a file named {COMPLETE_MARKER}, which is reserved; rename it")
    store = open_store(remote)
    marker_key = prefix + COMPLETE_MARKER
    existing = set(store.list_keys(prefix))
    # Readers must never see the marker while the prefix holds a mix of old and new files.
    if marker_key in existing:
        store.delete([marker_key])
    uploaded: list[str] = []
    try:
        for name in files:
            upload_file(store, local / name, prefix + name)
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


def _listed_files(store: ObjectStore, prefix: str, keys: list[str]) -> list[str]:
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


def download_tree(uri: str, target: Path) -> None:
    """Download a complete prefix into the existing directory ``target``."""
    remote, prefix = remote_prefix(uri)
    store = open_store(remote)
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
        _download_file(store, prefix + name, destination)
