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


FIGURE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg")


def output_file(path: str | Path, option: str, overwrite: bool = False, inputs=(), runs=(), suffixes=(),
                replace: str = "add --overwrite") -> Path:
    """Check, before any work, a file a command is about to write (``option`` names it in the errors).

    Refused in one line: a folder (or a name ending in /); a parent that is a file or cannot be created; a
    suffix not in ``suffixes`` (when given); one of the command's ``inputs`` or a file inside an input folder
    (the data it reads); any file inside one of the ``runs`` it reads, new or existing (the run folder holds
    the run's own files; a command's default file there is checked without ``runs``); and any other existing
    file unless ``overwrite`` (the user asked to replace it; ``replace`` says how, in the caller's words)."""
    text = str(path)
    path = Path(path)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise ConfigError(f"{option} {text} is a folder; give a file name, e.g. "
                          f"{path / ('out' + (suffixes[0] if suffixes else '.csv'))}")
    _check_parent(path, option)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {text}: give a file name ending in one of {', '.join(suffixes)}, e.g. "
                          f"{path.with_suffix(suffixes[0]) if path.suffix else text + suffixes[0]}")
    target = path.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if target == source or (source.is_dir() and target.is_relative_to(source) and path.exists()):
            raise ConfigError(f"{option} {text} is one of the inputs; give another file name")
    for run in [runs] if isinstance(runs, (str, Path)) else runs:
        if target.is_relative_to(Path(run).resolve()):
            raise ConfigError(f"{option} {text} would be a file of the run folder {run}, which holds the run's own "
                              "files; give a file outside it")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {text} already exists; give a new file name, or {replace} to replace it")
    return path


def _check_parent(path: Path, option: str) -> None:
    """The folder ``path`` goes into exists, or can be made: its nearest existing ancestor is a writable folder."""
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{option} {path}: {ancestor} is a file, so no folder can be made there; give a file "
                          "name in a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: the folder {ancestor} is not writable; give a file name in a folder "
                          "you can write to")


def check_run_outside_data(run_dir: str | Path, root: str | Path) -> None:
    """Refuse a run folder inside the data folder ``root`` (an image_folder's ``data.args.root``): under
    root/train/ it would be read as a class by the next training, its plots as that class's images. ``root``
    itself passes here (a fresh run refuses a folder that holds files anyway; a bundle may save there)."""
    run, data = Path(run_dir).resolve(), Path(root).resolve()
    if run != data and run.is_relative_to(data):
        raise ConfigError(f"run folder {run_dir} is inside data.args.root {root}, whose folders are read as splits "
                          "and classes; give a run folder outside the data")


def save_figure(fig, path: str | Path) -> Path:
    """``fig.savefig(path)``, whole or not at all (see ``write_atomically``); the format from the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".").lower() or "png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def not_a_run_folder(path: str | Path) -> str:
    """How a path given as a run folder falls short, for a one-line error: it does not exist, it is a file (of
    a run, say its config.yaml), or it holds no config.yaml."""
    if not Path(path).exists():
        return f"{path} does not exist"
    if Path(path).is_file():
        return f"{path} is a file, not a run folder (the folder that holds config.yaml)"
    return f"{path} is not a run folder (no config.yaml)"


class OutputFolder:
    """The folder a fresh run or report writes into.

    ``OutputFolder(path, overwrite, what, alternative, marker)`` refuses at once (one line) a path that is a
    file, a folder holding files when ``overwrite`` is false, and one that does not hold ``marker`` (the file
    every such folder has: a run's config.yaml) even with ``overwrite``: the user's data is never taken for a
    run. With ``overwrite``, ``replace()`` moves the old folder aside to ``.NAME.replaced`` beside it;
    ``started()`` deletes it once the new content is safe; ``failed()`` (before ``started``) removes the new
    content and moves the old folder back.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, what: str = "run", alternative: str = "",
                 marker: str | None = None):
        self.path, self.what = Path(path), what
        self.aside: Path | None = None
        self.safe = False
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
        if self.replacing and marker is not None and not (self.path / marker).exists():
            article = "an" if what[0] in "aeiou" else "a"
            raise ConfigError(f"{self.path} holds files but no {marker}, so it is not the folder of {article} "
                              f"{what}, and --overwrite replaces only that; give a new folder")

    def replace(self) -> None:
        """Move the old folder aside (only with overwrite, only when it holds files) and make a new one."""
        if self.replacing and self.aside is None:
            self.aside = self.path.resolve().with_name(f".{self.path.resolve().name}.replaced")
            if self.aside.exists():  # left by an earlier --overwrite that was killed: that one is older still
                shutil.rmtree(self.aside)
            os.replace(self.path, self.aside)
        self.path.mkdir(parents=True, exist_ok=True)

    def started(self) -> None:
        """The new content is safe: delete the old folder (``failed`` leaves everything alone from now on)."""
        self.safe = True
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def failed(self, keep_partial: bool = False) -> None:
        """The new content failed before it was safe: remove it and bring the old folder back, or leave the
        folder as it was found (none, or empty), so that the same command can simply be run again.
        ``keep_partial``: unless an old folder comes back, keep what was written (a report whose finished
        runs a ``--resume`` continues from)."""
        if self.safe:
            return
        if self.aside is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self.aside, self.path)
            self.aside = None
        elif keep_partial:
            if self.created and self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()
        elif self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        elif not self.replacing and self.path.is_dir():  # it was empty: empty it again
            for item in self.path.iterdir():
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
