"""Tests for kubeforge.artifacts over the three backends: local paths, s3:// and gs://.

Nothing here is mocked. S3 is moto's server speaking the real S3 REST API on loopback, and GCS is the
gcp-storage-emulator speaking the GCS JSON API on loopback, so the real boto3 / google-cloud-storage
client code runs (request signing, multipart/resumable uploads, checksums, error responses).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from kubeforge import artifacts
from kubeforge.errors import ArtifactError

S3_BUCKET = "kubeforge-test"
GCS_BUCKET = "kubeforge-test"
BACKENDS = ["local", "s3", "gs"]


# --------------------------------------------------------------------------------------------------
# Storage servers on loopback
# --------------------------------------------------------------------------------------------------


def _s3_client() -> Any:
    import boto3

    return boto3.session.Session().client("s3")


def _gcs_client() -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="kubeforge-test", credentials=AnonymousCredentials())


def _split(uri: str) -> tuple[str, str, str]:
    scheme, rest = uri.split("://", 1)
    bucket, _, key = rest.partition("/")
    return scheme, bucket, key


def _remote_keys(uri: str) -> list[str]:
    """Every key under the prefix ``uri``, listed with the storage client directly."""
    scheme, bucket, key = _split(uri)
    prefix = key.rstrip("/") + "/"
    if scheme == "s3":
        response = _s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"][len(prefix) :] for item in response.get("Contents", []))
    return sorted(blob.name[len(prefix) :] for blob in _gcs_client().list_blobs(bucket, prefix=prefix))


def _raw_put(uri: str, data: bytes) -> None:
    """Write one object with the storage client directly (bypassing kubeforge)."""
    scheme, bucket, key = _split(uri)
    if scheme == "s3":
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    else:
        _gcs_client().bucket(bucket).blob(key).upload_from_string(data)


@pytest.fixture(params=BACKENDS)
def base(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty location on one backend: a local directory or a unique key prefix in a bucket."""
    backend = request.param
    if backend == "local":
        return str(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket" if backend == "s3" else "gcs_bucket")
    return f"{backend}://{bucket}/{uuid.uuid4().hex}"


@pytest.fixture(params=["s3", "gs"])
def remote_base(request: pytest.FixtureRequest) -> str:
    """A fresh key prefix in the S3 or the GCS test bucket."""
    bucket = request.getfixturevalue("s3_bucket" if request.param == "s3" else "gcs_bucket")
    return f"{request.param}://{bucket}/{uuid.uuid4().hex}"


def _listing(uri: str) -> list[str]:
    """What a directory artifact holds: local files or remote keys, as sorted relative paths."""
    if artifacts.is_remote(uri):
        return _remote_keys(uri)
    root = Path(uri)
    if not root.exists():
        return []
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def _fill(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _read_tree(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# --------------------------------------------------------------------------------------------------
# Every backend
# --------------------------------------------------------------------------------------------------


def test_round_trip_bytes_and_text(base: str) -> None:
    """write/read bytes and text, overwrite, and exists() on local, S3 (moto) and GCS (emulator)."""
    uri = f"{base}/nested/dir/preprocessor.json"
    assert not artifacts.exists(uri)
    artifacts.write_text(uri, '{"héllo": "wörld"}')
    assert artifacts.exists(uri)
    assert artifacts.read_text(uri) == '{"héllo": "wörld"}'

    payload = bytes(range(256)) * 64
    artifacts.write_bytes(uri, payload)
    assert artifacts.read_bytes(uri) == payload


def test_missing_object_names_the_uri(base: str) -> None:
    """Reading a missing file/object raises ArtifactError that names the URI and says it is missing."""
    uri = f"{base}/does-not-exist.json"
    with pytest.raises(ArtifactError) as info:
        artifacts.read_text(uri)
    message = str(info.value)
    assert uri.removeprefix("file://") in message
    assert "not found" in message or "no such file" in message


def test_atomic_output_publishes_on_success(base: str) -> None:
    """atomic_output yields a not-yet-existing local path with the target's name; success publishes it."""
    uri = f"{base}/model/model.pt"
    with artifacts.atomic_output(uri) as path:
        assert path.name == "model.pt"
        assert not path.exists()
        path.write_bytes(b"weights")
        assert not artifacts.exists(uri)  # not visible until the block ends
    assert artifacts.read_bytes(uri) == b"weights"


def test_atomic_output_failure_publishes_nothing(base: str) -> None:
    """An exception inside atomic_output leaves no object/file and no temporary leftovers."""
    uri = f"{base}/model/model.pt"
    staged: Path | None = None
    with pytest.raises(RuntimeError, match="boom"), artifacts.atomic_output(uri) as path:
        staged = path
        path.write_bytes(b"half-written")
        raise RuntimeError("boom")
    assert not artifacts.exists(uri)
    assert staged is not None and not staged.exists() and not staged.parent.exists()
    if not artifacts.is_remote(base):
        assert list(Path(base, "model").iterdir()) == []


def test_atomic_output_without_a_file_is_an_error(base: str) -> None:
    """A block that writes nothing is an ArtifactError, and nothing is published."""
    uri = f"{base}/empty.bin"
    with pytest.raises(ArtifactError, match="nothing was written"), artifacts.atomic_output(uri):
        pass
    assert not artifacts.exists(uri)


def test_atomic_output_dir_round_trip(base: str, tmp_path: Path) -> None:
    """A published directory reads back through local_dir() and download_dir()."""
    uri = f"{base}/model-dir"
    files = {"model.pt": "weights", "schema.json": "{}", "sub/deeper/metrics.jsonl": "{}\n{}\n"}
    with artifacts.atomic_output_dir(uri) as out:
        assert out.is_dir() and not any(out.iterdir())
        _fill(out, files)
    if artifacts.is_remote(uri):
        assert _listing(uri) == sorted([*files, artifacts.COMPLETE_MARKER])
    else:
        assert _listing(uri) == sorted(files)

    with artifacts.local_dir(uri) as local:
        assert _read_tree(local) == files
    copy = artifacts.download_dir(uri, tmp_path / "copy")
    assert copy == tmp_path / "copy"
    assert _read_tree(copy) == files


def test_atomic_output_dir_failure_publishes_nothing(base: str) -> None:
    """An exception inside atomic_output_dir leaves no directory and no keys."""
    uri = f"{base}/model-dir"
    with pytest.raises(RuntimeError, match="boom"), artifacts.atomic_output_dir(uri) as out:
        _fill(out, {"model.pt": "weights"})
        raise RuntimeError("boom")
    assert _listing(uri) == []
    if not artifacts.is_remote(base):
        assert not Path(uri).exists()
        assert list(Path(base).iterdir()) == []  # no temp dir left beside it


def test_upload_and_download_dir(base: str, tmp_path: Path) -> None:
    """upload_dir publishes a local tree; download_dir refuses a target that already holds files."""
    source = tmp_path / "source"
    files = {"a.txt": "A", "b/c.txt": "C"}
    _fill(source, files)
    uri = f"{base}/uploaded"
    artifacts.upload_dir(source, uri)
    assert _read_tree(artifacts.download_dir(uri, tmp_path / "empty-target")) == files

    busy = tmp_path / "busy"
    _fill(busy, {"keep.txt": "mine"})
    with pytest.raises(ArtifactError, match="new or empty directory"):
        artifacts.download_dir(uri, busy)
    assert _read_tree(busy) == {"keep.txt": "mine"}


@pytest.mark.parametrize("link_to", ["file", "folder"])
def test_publishing_refuses_symlinks_and_names_them(base: str, tmp_path: Path, link_to: str) -> None:
    """A link in an output folder could point anywhere (another team's data, a credentials file): publishing
    it would copy what it points to. It is refused with the link's path, and nothing is published."""
    secret = tmp_path / "outside" / "credentials"
    _fill(secret.parent, {"credentials": "aws_secret_access_key = hunter2"})
    source = tmp_path / "model"
    _fill(source, {"weights.bin": "W", "sub/config.json": "{}"})
    (source / "sub" / "leak").symlink_to(secret if link_to == "file" else secret.parent)
    uri = f"{base}/published"
    with pytest.raises(ArtifactError, match=r"sub/leak: is a symbolic link"):
        artifacts.upload_dir(source, uri)
    with pytest.raises(ArtifactError, match=r"leak: is a symbolic link"), artifacts.atomic_output_dir(uri) as out:
        _fill(out, {"weights.bin": "W"})
        (out / "leak").symlink_to(secret)
    assert _listing(uri) == []
    assert not artifacts.exists(f"{uri}/sub/leak")


# --------------------------------------------------------------------------------------------------
# Local only
# --------------------------------------------------------------------------------------------------


def test_local_write_leaves_no_temp_files(tmp_path: Path) -> None:
    """A local write goes through a temp file + rename; only the target remains, with a normal mode."""
    target = tmp_path / "a" / "b" / "out.txt"
    artifacts.write_text(str(target), "one")
    artifacts.write_text(str(target), "two")
    assert target.read_text() == "two"
    assert [path.name for path in target.parent.iterdir()] == ["out.txt"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_local_atomic_output_dir_replaces_existing_directory(tmp_path: Path) -> None:
    """Publishing over an existing directory replaces it entirely (stale files go) and leaves no debris."""
    target = tmp_path / "model"
    _fill(target, {"old.txt": "old", "shared.txt": "old"})
    with artifacts.atomic_output_dir(str(target)) as out:
        _fill(out, {"shared.txt": "new", "new.txt": "new"})
        assert _read_tree(target) == {"old.txt": "old", "shared.txt": "old"}  # untouched while writing
    assert _read_tree(target) == {"shared.txt": "new", "new.txt": "new"}
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_local_atomic_output_dir_failure_keeps_old_directory(tmp_path: Path) -> None:
    """A failing atomic_output_dir leaves the existing directory exactly as it was, with no debris."""
    target = tmp_path / "model"
    _fill(target, {"old.txt": "old"})
    with pytest.raises(ValueError, match="bad"), artifacts.atomic_output_dir(str(target)) as out:
        _fill(out, {"new.txt": "new"})
        raise ValueError("bad")
    assert _read_tree(target) == {"old.txt": "old"}
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_local_paths_and_schemes(tmp_path: Path) -> None:
    """is_remote() knows s3/gs, treats plain and file:// paths as local, and refuses other schemes."""
    assert artifacts.is_remote("s3://bucket/key")
    assert artifacts.is_remote("gs://bucket/key")
    assert not artifacts.is_remote("relative/path.json")
    assert not artifacts.is_remote(str(tmp_path))
    uri = f"file://{tmp_path}/x.txt"
    assert not artifacts.is_remote(uri)
    artifacts.write_text(uri, "via file://")
    assert (tmp_path / "x.txt").read_text() == "via file://"
    with pytest.raises(ArtifactError, match="unsupported URI scheme 'http'"):
        artifacts.read_text("http://example.com/x.json")
    with pytest.raises(ArtifactError, match="no such directory"), artifacts.local_dir(str(tmp_path / "missing")):
        pass


# --------------------------------------------------------------------------------------------------
# Remote only (S3 on moto's server, GCS on gcp-storage-emulator)
# --------------------------------------------------------------------------------------------------


def test_missing_bucket_says_so(remote_base: str) -> None:
    """A URI in a bucket that does not exist is an ArtifactError naming the bucket, for reads and exists()."""
    scheme = remote_base.split("://", 1)[0]
    uri = f"{scheme}://no-such-bucket-{uuid.uuid4().hex[:8]}/a/b.json"
    with pytest.raises(ArtifactError, match="does not exist") as info:
        artifacts.read_text(uri)
    assert uri in str(info.value)
    with pytest.raises(ArtifactError, match="does not exist"):
        artifacts.exists(uri)


def test_incomplete_prefix_is_refused(remote_base: str, tmp_path: Path) -> None:
    """Objects under a prefix without _KUBEFORGE_COMPLETE are an unfinished upload: download refuses them."""
    uri = f"{remote_base}/half"
    _raw_put(f"{uri}/model.pt", b"weights")
    with pytest.raises(ArtifactError, match="incomplete") as info:
        artifacts.download_dir(uri, tmp_path / "target")
    assert uri in str(info.value)
    assert not (tmp_path / "target").exists()
    assert [path.name for path in tmp_path.iterdir()] == []  # no temp download left behind
    with pytest.raises(ArtifactError, match="incomplete"), artifacts.local_dir(uri):
        pass
    with pytest.raises(ArtifactError, match="no objects under this prefix"):
        artifacts.download_dir(f"{remote_base}/nothing-here", tmp_path / "target")


def test_marker_lists_files_and_missing_ones_are_refused(remote_base: str, tmp_path: Path) -> None:
    """The marker is a manifest; a file it lists that has gone missing makes the prefix incomplete."""
    uri = f"{remote_base}/dir"
    with artifacts.atomic_output_dir(uri) as out:
        _fill(out, {"a.txt": "A", "b.txt": "B"})
    manifest = json.loads(artifacts.read_text(f"{uri}/{artifacts.COMPLETE_MARKER}"))
    assert manifest["files"] == ["a.txt", "b.txt"]
    _raw_put(f"{uri}/{artifacts.COMPLETE_MARKER}", json.dumps({**manifest, "files": ["a.txt", "gone.txt"]}).encode())
    with pytest.raises(ArtifactError, match=r"incomplete: 1 file\(s\).*gone\.txt"):
        artifacts.download_dir(uri, tmp_path / "target")


def test_remote_overwrite_removes_stale_keys(remote_base: str) -> None:
    """Publishing over an existing prefix replaces its contents: stale objects go, the marker is rewritten."""
    uri = f"{remote_base}/model"
    with artifacts.atomic_output_dir(uri) as out:
        _fill(out, {"old.txt": "old", "shared.txt": "old"})
    with artifacts.atomic_output_dir(uri) as out:
        _fill(out, {"shared.txt": "new", "new.txt": "new"})
    assert _remote_keys(uri) == sorted([artifacts.COMPLETE_MARKER, "new.txt", "shared.txt"])
    with artifacts.local_dir(uri) as local:
        assert _read_tree(local) == {"new.txt": "new", "shared.txt": "new"}


def test_failed_upload_midway_removes_uploaded_keys(remote_base: str, tmp_path: Path) -> None:
    """A publish that fails part-way (a dangling symlink cannot be read) deletes what it uploaded.

    Over an existing complete prefix, the marker is gone afterwards, so readers refuse the half-replaced
    prefix instead of mixing old and new files.
    """
    source = tmp_path / "source"
    _fill(source, {"a.txt": "A", "b.txt": "B"})
    (source / "z-dangling").symlink_to(tmp_path / "nowhere")

    fresh = f"{remote_base}/fresh"
    with pytest.raises(ArtifactError, match="z-dangling"):
        artifacts.upload_dir(source, fresh)
    assert _remote_keys(fresh) == []

    existing = f"{remote_base}/existing"
    with artifacts.atomic_output_dir(existing) as out:
        _fill(out, {"old.txt": "old"})
    with pytest.raises(ArtifactError, match="z-dangling"):
        artifacts.upload_dir(source, existing)
    assert artifacts.COMPLETE_MARKER not in _remote_keys(existing)
    with pytest.raises(ArtifactError, match="incomplete"):
        artifacts.download_dir(existing, tmp_path / "target")


def test_large_file_goes_up_in_parts(remote_base: str) -> None:
    """A file over the clients' 8 MiB threshold takes the S3 multipart / GCS resumable path and reads back."""
    uri = f"{remote_base}/big/model.pt"
    payload = bytes(range(256)) * (9 * 1024 * 4)  # 9 MiB
    with artifacts.atomic_output(uri) as path:
        path.write_bytes(payload)
    assert artifacts.read_bytes(uri) == payload


def test_remote_uri_needs_bucket_and_key(remote_base: str) -> None:
    """Malformed remote URIs are refused with a hint: no bucket, no object key, or a whole-bucket directory."""
    scheme, bucket, _ = _split(remote_base)
    with pytest.raises(ArtifactError, match="no bucket"):
        artifacts.read_text(f"{scheme}:///key")
    with pytest.raises(ArtifactError, match="names no object"):
        artifacts.read_text(f"{scheme}://{bucket}/dir/")
    with pytest.raises(ArtifactError, match="key prefix"), artifacts.atomic_output_dir(f"{scheme}://{bucket}"):
        pass


def test_s3_without_credentials(s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no AWS credentials anywhere, the error names the URI and says how to provide them."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    uri = f"s3://{s3_bucket}/x.json"
    with pytest.raises(ArtifactError, match="no AWS credentials found") as info:
        artifacts.read_text(uri)
    assert uri in str(info.value)
