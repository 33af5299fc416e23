"""kfp.local's LocalCache keyed by what artifacts contain, and verified before an entry is reused.

kfp.local keys a task by component name, image, command, env and arguments, with input
artifacts named by URI; its entries are written atomically and refused when an artifact file
is gone. This subclass keeps all of that and changes two things: an input artifact counts by
the SHA-256 of its content (a changed byte misses; the same bytes under another run's path
hit), and an entry records the digest of every output artifact, so an output changed or cut
short after the task finished is never reused. kfp refuses an entry whose artifact has no file,
which also refuses every task with a Metrics output (its values live in metadata, no file is
written); here an artifact that had no file when its task finished is not taken for a deleted
one, so such tasks hit too. The kubeforge package's own source digest is
part of every key: component functions only call into kubeforge, so editing a core misses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

from kfp import dsl
from kfp.local.cache import _ARTIFACT_LIST_MARKER, _ARTIFACT_MARKER, LocalCache

log = logging.getLogger(__name__)
_DIGESTS = "__kubeforge_output_digests__"
_REMOTE = ("gs://", "s3://", "minio://", "oci://", "http://", "https://")


class ContentCache(LocalCache):  # type: ignore[misc]
    """A LocalCache whose keys use artifact content digests and whose entries verify their outputs."""

    def __init__(self, cache_root: str) -> None:
        super().__init__(cache_root)
        self._hits = threading.local()

    def compute_key(
        self,
        component_name: str,
        image: str,
        full_command: list[str],
        arguments: dict[str, Any],
        env_vars: dict[str, str] | None = None,
        custom_cache_key: str | None = None,
    ) -> str:
        """kfp's key over (component, image, command + kubeforge source digest, content-digested arguments)."""
        key: str = super().compute_key(
            component_name=component_name,
            image=image,
            full_command=[*full_command, f"kubeforge-source:{kubeforge_source_digest()}"],
            arguments={name: _digested(value) for name, value in arguments.items()},
            env_vars=env_vars,
            custom_cache_key=custom_cache_key,
        )
        return key

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        """Store `outputs` with the digest of each output artifact (atomically, as kfp does)."""
        super().put(key, {**outputs, _DIGESTS: output_digests(outputs)})

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry's outputs, or None when missing, unreadable, or its artifacts changed since."""
        entry: dict[str, Any] | None = super().get(key)
        if entry is None:
            return None
        recorded = entry.pop(_DIGESTS, None)
        if recorded != output_digests(entry):
            log.warning("cache entry %s no longer matches its outputs; running the task again", key[:12])
            return None
        self._hits.key = key
        return entry

    def _deserialize_outputs(self, serialized: dict[str, Any]) -> dict[str, Any]:
        """kfp's deserialisation, skipping its file-exists check for artifacts that had no file when stored."""
        absent = {name for name, digest in serialized.get(_DIGESTS, {}).items() if digest == "missing"}
        return {name: _deserialized(name, value, absent) for name, value in serialized.items()}

    def take_hit(self) -> str | None:
        """The key this thread last served from the cache (cleared by reading it)."""
        key: str | None = getattr(self._hits, "key", None)
        self._hits.key = None
        return key


def _deserialized(name: str, value: Any, absent: set[str]) -> Any:
    if not isinstance(value, dict) or not (value.get(_ARTIFACT_MARKER) or value.get(_ARTIFACT_LIST_MARKER)):
        return LocalCache._deserialize_output(value)
    items = value["artifacts"] if value.get(_ARTIFACT_LIST_MARKER) else [value]
    artifacts = []
    for position, item in enumerate(items):
        if f"{name}[{position}]" in absent:  # kfp checks the uri exists; this one never did
            artifact = LocalCache._deserialize_artifact({**item, "uri": ""})
            artifact.uri = item.get("uri", "")
        else:
            artifact = LocalCache._deserialize_artifact(item)
        artifacts.append(artifact)
    return artifacts if value.get(_ARTIFACT_LIST_MARKER) else artifacts[0]


def output_digests(outputs: dict[str, Any]) -> dict[str, str]:
    """Content digest of every artifact among `outputs`, keyed by output name (and list position)."""
    digests = {}
    for name, value in outputs.items():
        items = value if isinstance(value, list) else [value]
        for position, item in enumerate(items):
            if isinstance(item, dsl.Artifact):
                digests[f"{name}[{position}]"] = artifact_digest(item.uri)
    return digests


def _digested(value: Any) -> Any:
    if isinstance(value, dsl.Artifact):
        return {"schema": type(value).schema_title, "digest": artifact_digest(value.uri), "metadata": value.metadata}
    if isinstance(value, list):
        return [_digested(item) for item in value]
    if isinstance(value, dict):
        return {key: _digested(item) for key, item in value.items()}
    return value


def artifact_digest(uri: str) -> str:
    """SHA-256 over a local artifact's bytes (a folder: every file's relative path and bytes)."""
    if not uri or uri.startswith(_REMOTE):
        return f"uri:{uri}"
    path = Path(uri)
    if path.is_file():
        return _file_digest(str(path), *_stamp(path))
    if not path.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        digest.update(_file_digest(str(file), *_stamp(file)).encode())
    return digest.hexdigest()


def _stamp(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


@cache
def _file_digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """Memoised on (path, size, mtime, inode): a rewritten file gets a new stamp and is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def kubeforge_source_digest() -> str:
    """SHA-256 over the installed kubeforge package's Python sources (components and pipelines included)."""
    import kubeforge

    digest = hashlib.sha256()
    roots = [Path(kubeforge.__file__).parent]
    for name in ("components", "pipelines"):
        try:
            module = __import__(f"kubeforge.{name}", fromlist=["__path__"])
            roots.extend(Path(entry) for entry in module.__path__)
        except ImportError:
            continue
    for root in roots:
        for file in sorted(root.rglob("*.py")):
            digest.update(os.fsencode(file.relative_to(root)) + b"\0" + file.read_bytes())
    return digest.hexdigest()


__all__ = ["ContentCache", "artifact_digest", "kubeforge_source_digest", "output_digests"]
