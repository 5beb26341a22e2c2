"""The data folder is private to the account that runs ringfence: folders 0700, files 0600.

It holds password hashes, people's records, keys and the audit log. What ringfence creates there
is created with its final mode, whatever the umask, so it is never readable by others even for
a moment; what an earlier version or another tool left readable is tightened at start-up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ringfence.config import ConfigError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def private_folder(path: Path) -> None:
    """``path`` as a folder only its owner can use, made with its parents if missing (an existing
    folder is tightened by :func:`tighten`)."""
    if not path.is_dir():
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is filtered by the umask


def private_file(path: Path) -> None:
    """``path`` as an empty file with mode 0600 if it does not exist yet.

    SQLite opens a database file that exists as it is, and gives its write-ahead log and
    shared-memory files the same mode, so creating ``ringfence.db`` here first keeps all three private.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, FILE_MODE)  # os.open's mode is filtered by the umask
    finally:
        os.close(descriptor)


def tighten(data_dir: Path, *files: Path) -> list[Path]:
    """Remove every group and other permission from ``data_dir`` itself, from what ringfence keeps in
    it (its keys, audit checkpoints and SQLite files, and ``files``) and, for such a folder, everything
    in it; the paths changed. Anything else in the folder is not ringfence's and is left as it is
    (``--data-dir .`` must not rewrite a project's modes): the folder's own 0700 already keeps others out.
    Symbolic links are not followed; missing paths are skipped.

    Raises :class:`ConfigError` naming a path that others can read and whose mode cannot be changed.
    """
    own = [data_dir / name for name in _own_names(data_dir)]
    changed: list[Path] = []
    if os.path.lexists(data_dir):
        _tighten(data_dir, changed)
    for path in [*own, *files]:
        if not os.path.lexists(path):
            continue
        _tighten(path, changed)
        if path.is_dir() and not path.is_symlink():
            for folder, names, entries in os.walk(path):
                for name in [*names, *entries]:
                    _tighten(Path(folder) / name, changed)
    return changed


def _own_names(data_dir: Path) -> list[str]:
    """The entries of ``data_dir`` that ringfence writes: ``keys/``, ``*.key`` and ``audit-*`` files."""
    try:
        names = os.listdir(data_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [name for name in names if name == "keys" or name.endswith(".key") or name.startswith("audit-")]


def _tighten(path: Path, changed: list[Path]) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or not mode & _OTHERS:
        return
    try:
        os.chmod(path, stat.S_IMODE(mode) & ~_OTHERS)
    except OSError as exc:
        raise ConfigError(f"{path} is readable by other accounts and its mode cannot be changed ({exc.strerror}); "
                          "make the data folder owned by the account that runs ringfence") from None
    changed.append(path)
