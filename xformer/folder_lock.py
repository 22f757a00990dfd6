"""One writer per folder: two processes writing one run folder would delete each other's temporaries and, on a
failure, remove what the other had saved. A folder is claimed (``hold_folder``) when it is checked, before
anything is written, and the second claimant is refused in one line. The claim is an exclusive ``fcntl.flock``
on a lock file outside the folder, which the kernel releases when the process ends, however it ends.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked
    fcntl = None

_HELD: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # resolved folder -> this process's lock


class FolderLock:
    """An exclusive ``fcntl.flock`` on the lock file of a folder (``lock_file``). Released (and the file deleted)
    by ``release`` or when the object is garbage; by the kernel when the process ends however it ends: a lock
    file left by a killed process blocks nothing, and the next holder deletes it."""

    def __init__(self, key: str, fd: int, file: Path):
        self.key = key
        self._close = weakref.finalize(self, _drop_lock, fd, file)

    @property
    def held(self) -> bool:
        return self._close.alive

    def release(self) -> None:
        if _HELD.get(self.key) is self:
            del _HELD[self.key]
        self._close()


def _drop_lock(fd: int, file: Path) -> None:
    """Delete the lock file while holding it (one who opened it before starts over: ``hold_folder``), then close."""
    try:
        if os.stat(file).st_ino == os.fstat(fd).st_ino:
            os.unlink(file)
    except OSError:
        pass
    os.close(fd)


def lock_file(path: str | Path) -> Path:
    """The lock file of the folder ``path``: named after its resolved path, in a private folder of the system's
    temporary directory; not inside the folder, which may not exist yet and which --overwrite moves aside."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / f"xformer-locks-{os.getuid()}" / f"{digest}.lock"


def hold_folder(path: str | Path, busy: Callable[[str], str]) -> FolderLock | None:
    """Claim the folder ``path`` for this process's writes, before it is checked or written: while another
    process holds it, ``ConfigError(busy("another xformer process (pid N)"))``. Within a process the claim is
    shared (a run's trainer claims the folder its ``OutputFolder`` holds). None where folders are not locked:
    no ``fcntl``, a torchrun process other than rank 0 (which alone writes), no usable temporary directory.
    Processes on other machines sharing the folder (a network file system) are not seen."""
    if fcntl is None or os.environ.get("RANK", "0") != "0":
        return None
    key, file = str(Path(path).resolve()), lock_file(path)
    if (lock := _HELD.get(key)) is not None and lock.held:
        return lock
    while True:
        try:
            file.parent.mkdir(mode=0o700, exist_ok=True)
            if file.parent.stat().st_uid != os.getuid():  # not our private folder: lock nothing rather than trust it
                return None
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").split()
            os.close(fd)
            pid = f" (pid {holder[0]})" if holder and holder[0].isdigit() else ""
            raise ConfigError(busy(f"another xformer process{pid}")) from None
        except OSError:  # a file system without locks
            os.close(fd)
            return None
        try:
            if os.stat(file).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder deleted it on release, after we opened it: start over with the new name
    os.pwrite(fd, f"{os.getpid()} {key}\n".ljust(64).encode(), 0)
    lock = _HELD[key] = FolderLock(key, fd, file)
    return lock


__all__ = ["FolderLock", "hold_folder", "lock_file"]
