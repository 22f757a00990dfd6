"""When the machine, not the input, stops a command: a full disk or quota, a file or folder without write
permission, a read-only file system, an I/O error.

``xformer`` ends such a failure in one line naming the path and the OS error, with exit status 1 (bad input,
which the user fixes in the command, is 2): the command was right, and runs again once there is room or
permission. A run keeps every checkpoint it had saved (a checkpoint that failed part-way is removed at
once, see checkpoint.py), so the line names the last one kept and the command that continues the run; a
fresh run that failed before its first checkpoint kept nothing (``OutputFolder.failed``), and the same
command runs again.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from ..folders import is_run_folder
from .checkpoint import CheckpointError, checkpoint_dir

ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def environment_error(error: BaseException) -> OSError | None:
    """``error`` as the OSError of a machine failure (``ENVIRONMENT``), else None. safetensors reports its I/O
    errors as text ("... No space left on device (os error 28)"): their number is read from it."""
    if isinstance(error, OSError):
        return error if error.errno in ENVIRONMENT else None
    if type(error).__name__ == "SafetensorError":
        code = re.search(r"os error (\d+)", str(error))
        if code is not None and int(code[1]) in ENVIRONMENT:
            return OSError(int(code[1]), os.strerror(int(code[1])))
    return None


def describe(error: OSError, run_dir: str | Path | None = None, out: str | Path | None = None,
             training: bool = False) -> str:
    """One line: the path (``out`` when the error names none), the OS error, and what to do; when ``training``
    (``xformer train``), for the run (the run folder the path lies in, else ``run_dir``) what is kept and how to
    go on. Other commands (a report of several runs, say) have their own way to go on: only the first part."""
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    fallback = out if out is not None else run_dir
    where = " -> ".join(str(p) for p in paths) or (str(fallback) if fallback is not None else "writing")
    name = errno.errorcode.get(error.errno, str(error.errno))
    fix = ("once there is room (free some space, or raise the quota)" if error.errno in NO_ROOM else
           "once it is writable (check the permissions, or give a place you can write to)"
           if error.errno != errno.EIO else "once the disk is checked")
    line = f"{where}: {error.strerror or error} ({name})"
    run = next((r for p in paths for r in _ancestors(Path(p)) if is_run_folder(r)), None)
    run = run if run is not None else (Path(run_dir) if run_dir is not None else None)
    if run is None or not training:
        return f"{line}; run the command again {fix}"
    kept = _last_checkpoint(run)
    if kept is None:
        return f"{line}; nothing of the run in {run} was kept: run the same command again {fix}"
    return (f"{line}; the run's checkpoints are kept (the last: {kept}): continue it {fix} with "
            f"xformer train --resume {run}")


def _ancestors(path: Path) -> list[Path]:
    return [path, *path.parents][:-1] if not path.is_absolute() else [path, *path.parents]


def _last_checkpoint(run: Path) -> Path | None:
    """The checkpoint latest.json names, when it is there; None when the run has none."""
    try:
        path = checkpoint_dir(run / "checkpoints")
    except (CheckpointError, OSError):
        return None
    return path if (path / "state.json").is_file() else None


__all__ = ["environment_error", "describe", "ENVIRONMENT"]
