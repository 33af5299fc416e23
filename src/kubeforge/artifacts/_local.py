"""Local files and directories, written atomically.

A file is written to a temporary file in the same directory, fsynced and moved into place with
:func:`os.replace`. A directory is built in a sibling temporary directory and renamed into place; an
existing directory is renamed aside first and removed only after the swap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from kubeforge.errors import ArtifactError

_FILE_MODE = 0o644
_DIR_MODE = 0o755


def local_error(path: Path, action: str, exc: OSError) -> ArtifactError:
    """An ArtifactError naming ``path``, the failed ``action`` and the likely fix for ``exc``."""
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
        raise local_error(parent, "create the directory", exc) from exc
    return parent


def sibling_temp_dir(path: Path, tag: str) -> Path:
    """A new empty directory next to ``path`` (same filesystem, so a rename out of it is atomic)."""
    parent = _ensure_parent(path)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=f".{tag}", dir=parent))
    except OSError as exc:
        raise local_error(parent, "create a temporary directory", exc) from exc


def refuse_directory(path: Path) -> None:
    """Raise ArtifactError if ``path`` is a directory where a file is to be written."""
    if path.is_dir():
        raise ArtifactError(f"{path}: cannot write: it is a directory, expected a file path")


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); parent directories are created."""
    parent = _ensure_parent(path)
    refuse_directory(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise local_error(parent, "create a temporary file", exc) from exc
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
        raise local_error(path, "write", exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)


def publish_file(staged: Path, target: Path) -> None:
    """Move the finished file ``staged`` (on the same filesystem) to ``target``, durably."""
    try:
        _fsync_file(staged)
        os.chmod(staged, _FILE_MODE)
        os.replace(staged, target)
    except OSError as exc:
        raise local_error(target, "publish", exc) from exc
    _fsync_dir(target.parent)


def refuse_file_in_the_way(target: Path) -> None:
    """Raise ArtifactError if a file (not a directory) sits where a directory is to be published."""
    if target.exists() and not target.is_dir():
        raise ArtifactError(
            f"{target}: cannot publish a directory: a file is in the way; remove it or pick another path"
        )


def publish_dir(built: Path, target: Path) -> None:
    """Move the finished directory ``built`` to ``target``, replacing an existing directory safely.

    The old directory is renamed aside, the new one renamed in, and only then the old one removed; if
    the second rename fails the old directory is put back.
    """
    os.chmod(built, _DIR_MODE)
    refuse_file_in_the_way(target)
    aside: Path | None = None
    if target.exists():
        aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        try:
            os.rename(target, aside)
        except OSError as exc:
            raise local_error(target, "move the existing directory aside", exc) from exc
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
        raise local_error(target, "publish the directory", exc) from exc
    _fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def files_under(root: Path) -> list[str]:
    """Relative POSIX paths of everything under ``root`` but folders, sorted; symbolic links are listed
    (to folders too) and never followed, so that publishing can refuse them."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        linked = [name for name in dirnames if (base / name).is_symlink()]
        found.extend((base / name).relative_to(root).as_posix() for name in [*filenames, *linked])
    return sorted(found)


def open_regular_file(path: Path) -> int:
    """A read-only descriptor of ``path``, refusing a symbolic link with an ArtifactError naming it.

    A link in an output folder could point anywhere (``/etc/shadow``, another team's data); publishing
    it would copy what it points to, so only regular files are published.
    """
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if path.is_symlink():
            raise ArtifactError(
                f"{path}: is a symbolic link; only regular files are published: "
                "replace the link with a copy of the file, or remove it"
            ) from None
        raise local_error(path, "read", exc) from exc


def refuse_symlinks(root: Path) -> None:
    """Raise an ArtifactError naming the first symbolic link under ``root``, if any."""
    for name in files_under(root):
        os.close(open_regular_file(root / name))


def copy_dir(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (built in a sibling temp dir, then renamed in)."""
    if not source.is_dir():
        raise ArtifactError(f"{source}: not a directory; pass the directory to copy")
    refuse_symlinks(source)
    built = sibling_temp_dir(target, "tmp")
    try:
        shutil.copytree(source, built, symlinks=True, dirs_exist_ok=True)
        publish_dir(built, target)
    except OSError as exc:
        shutil.rmtree(built, ignore_errors=True)
        raise local_error(target, "copy the directory", exc) from exc
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
