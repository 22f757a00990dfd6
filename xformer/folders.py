"""Users' run and report folders: never overwritten or mixed into unasked; files replaced whole.

A fresh run (or report) goes into a folder that is new or empty. A folder that already holds
files is refused in one line, unless the user asked to replace it (``--overwrite``); then the
old folder is moved aside, not deleted, until the new one has started cleanly (a run: its first
checkpoint is saved; a report: it is complete). A new one that fails before that point is
removed and the old folder moved back, so a mistake never costs the work that was there.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .config import ConfigError


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Replace ``path`` whole: a crash part-way leaves the old file (or none), never half of one."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def not_a_run_folder(path: str | Path) -> str:
    """How a path given as a run folder falls short, for a one-line error: it does not exist, or it holds no
    config.yaml."""
    return f"{path} does not exist" if not Path(path).exists() else f"{path} is not a run folder (no config.yaml)"


class OutputFolder:
    """The folder a fresh run or report writes into.

    ``OutputFolder(path, overwrite, what, alternative)`` refuses at once (one line) a path that is a file, or a
    folder holding files when ``overwrite`` is false. With ``overwrite``, ``replace()`` moves the old
    folder aside to ``.NAME.replaced`` beside it; ``started()`` deletes it once the new content is
    safe; ``failed()`` (before ``started``) removes the new content and moves the old folder back.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, what: str = "run", alternative: str = ""):
        self.path, self.what = Path(path), what
        self.aside: Path | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a {what} folder; give a new folder")
        self.created = not self.path.exists()
        self.replacing = self.path.is_dir() and any(self.path.iterdir())
        if self.replacing and not overwrite:
            raise ConfigError(f"{self.path} already holds files; give a new folder for the {what}, "
                              f"{alternative + ', ' if alternative else ''}or add --overwrite to replace it")
        if self.replacing and Path.cwd().resolve().is_relative_to(self.path.resolve()):
            raise ConfigError(f"--overwrite would replace {self.path}, which holds the current folder; "
                              f"give a {what} folder of its own")

    def replace(self) -> None:
        """Move the old folder aside (only with overwrite, only when it holds files) and make a new one."""
        if self.replacing and self.aside is None:
            self.aside = self.path.resolve().with_name(f".{self.path.resolve().name}.replaced")
            if self.aside.exists():  # left by an earlier --overwrite that was killed: that one is older still
                shutil.rmtree(self.aside)
            os.replace(self.path, self.aside)
        self.path.mkdir(parents=True, exist_ok=True)

    def started(self) -> None:
        """The new content is safe: delete the old folder."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def failed(self) -> None:
        """The new content failed before it was safe: remove it and bring the old folder back (a folder
        this object created and nothing was written into is removed too)."""
        if self.aside is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self.aside, self.path)
            self.aside = None
        elif self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()
