"""Users' run and report folders: never overwritten or mixed into unasked; files replaced whole.

A fresh run (or report) goes into a folder that is new or empty. A folder that already holds
files is refused in one line, unless the user asked to replace it (``--overwrite``); then the
old folder is moved aside, not deleted, until the new one has started cleanly (a run: its first
checkpoint is saved; a report: it is complete). A new one that fails before that point is
removed and the old folder moved back, so a mistake never costs the work that was there. A process killed
in between (kill -9) leaves the old folder aside, perhaps the only complete copy: the folder is then refused,
naming the copy and how to put it back, until the user has; nothing is ever deleted in its place.

Outputs never go inside a run folder (an --overwrite of the run would delete them) nor into the data folder
of an image_folder run (they would be read as its images and classes): ``check_outside_data``.

One writer per folder: an ``OutputFolder`` claims its folder when it is checked, before anything is written
(``folder_lock.hold_folder``), so a second process given it is refused in one line.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

from .config import ConfigError
from .errors import a_or_an
from .folder_lock import FolderLock, hold_folder, lock_file  # noqa: F401  (re-exported: one writer per folder)


def temporary(path: Path, pid: int | None = None) -> Path:
    """Where process ``pid`` (this one) writes ``path`` before renaming it into place: ``.NAME.tmpPID`` (what a
    killed write leaves; ``xformer.train.checkpoint.remove_stale_temporaries`` knows the name)."""
    return path.with_name(f".{path.name}.tmp{os.getpid() if pid is None else pid}")


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Replace ``path`` whole: a crash part-way leaves the old file (or none), never half of one."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as f:
            # surrogateescape: a file name that is not UTF-8 (predict's CSV) keeps its bytes, as standard output's
            f.write(data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data)
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
        inside = source.is_dir() and target.is_relative_to(source)
        if target == source or (inside and path.exists()):
            raise ConfigError(f"{option} {text} is one of the inputs; give another file name")
        if inside:  # a new file there would be read by the next command over that folder
            raise ConfigError(f"{option} {text} is inside {item}, a folder the command reads; give a file outside it")
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


def check_run_outside_data(run_dir: str | Path, root: str | Path, key: str = "data.args.root") -> None:
    """Refuse a run folder inside the data folder ``root`` (an image_folder's ``data.args.root``, a folder of text
    files in ``data.args.files``): under root/train/ it would be read as a class by the next training, its plots as
    that class's images; a run's tokenizer/vocab.txt among a folder's text. ``root`` itself passes here (a fresh
    run refuses a folder that holds files anyway; a bundle may save there)."""
    run, data = Path(run_dir).resolve(), Path(root).resolve()
    if run != data and run.is_relative_to(data):
        raise ConfigError(f"run folder {run_dir} is inside {key} {root}, all of whose files the next run (its "
                          "resume, its evaluation) reads as data; give a run folder outside the data")


def check_outside_data(path: str | Path, option: str, run_dirs=()) -> None:
    """Refuse an output (a file or a folder) at or inside the data folder of a run the command reads: an
    image_folder run's ``data.args.root``, whose sub-folders are read as splits and classes, so that a figure
    there would be scored as an image by the next evaluate, and a folder as a class. Data read from files
    (a CSV, text files: ``data.args.path``, ``files``, ``test_path``) is refused as the output itself (even with
    --overwrite: the run could no longer be evaluated or resumed); the folder a file lies in is not checked."""
    target = Path(path).resolve()
    for run in [run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs:
        if target in _data_files(Path(run)):
            raise ConfigError(f"{option} {path} is a data file of the run {run} (its config.yaml's data.args), which "
                              "evaluate and --resume read again; give another file name")
        root = _image_root(Path(run))
        if root is not None and target.is_relative_to(root):
            raise ConfigError(f"{option} {path} is inside data.args.root {root} of the run {run}, whose folders are "
                              "read as splits and classes (the next evaluate would read it as data); give a place "
                              "outside the data")


def _data_args(run_dir: Path) -> tuple[str | None, dict]:
    """(data name, data.args) of a run's config.yaml; (None, {}) for a folder that is not a readable run (the
    command's own check of its run folder says so)."""
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")).get("data")
        return data.get("name"), dict(data.get("args") or {})
    except (OSError, ValueError, AttributeError, TypeError, yaml.YAMLError):
        return None, {}


def _data_files(run_dir: Path) -> set[Path]:
    """The files a run reads as its data (config.yaml's data.args.path, files and test_path), resolved."""
    args = _data_args(run_dir)[1]
    named = [args.get(key) for key in ("path", "files", "test_path")]
    flat = [v for value in named for v in (value if isinstance(value, list) else [value])]
    return {Path(v).expanduser().resolve() for v in flat if isinstance(v, str) and v}


def _image_root(run_dir: Path) -> Path | None:
    """The image folder an image_folder run reads (its config.yaml's data.args.root), else None."""
    name, args = _data_args(run_dir)
    root = args.get("root") if name == "image_folder" else None
    return Path(root).expanduser().resolve() if isinstance(root, str) and root else None


def save_figure(fig, path: str | Path) -> Path:
    """``fig.savefig(path)``, whole or not at all (see ``write_atomically``); the format from the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".").lower() or "png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def not_a_run_folder(path: str | Path) -> str:
    """How a path given as a run folder falls short, for a one-line error: it does not exist, it is a file (of
    a run, say its config.yaml), or it holds no config.yaml; and where the complete old run lies when an
    interrupted ``--overwrite`` left it aside (``replaced_note``)."""
    if not Path(path).exists():
        return f"{path} does not exist{replaced_note(path)}"
    if Path(path).is_file():
        return f"{path} is a file, not a run folder (the folder that holds config.yaml)"
    return f"{path} is not a run folder (no config.yaml{inside_run_note(path)}){replaced_note(path)}"


def inside_run_note(path: str | Path, checkpoint: bool = True) -> str:
    """For an error about ``path`` given as a run folder: the run it lies inside (its checkpoints/, one of its
    checkpoints), as the user would type it, and with ``checkpoint`` how to pick that checkpoint; "" otherwise."""
    given = Path(path)
    run = next((p for p in [*given.parents, *given.resolve().parents] if is_run_folder(p)), None)
    if run is None:
        return ""
    step = re.fullmatch(r"step_0*(\d+)", given.name) if checkpoint and given.parent.name == "checkpoints" else None
    return f"; it lies inside the run {run}: give {run}" + (f", with --checkpoint step_{step[1]}" if step else "")


def check_distinct_runs(runs) -> None:
    """Several runs combined (an ensemble, an average) must be distinct folders: one given twice (``r1 r1``, or
    ``r1 ./r1``) would weigh that run double, which no one asks for on purpose."""
    seen: dict[Path, str] = {}
    for run in map(str, runs):
        first = seen.get(Path(run).resolve())
        seen.setdefault(Path(run).resolve(), run)
        if first is not None:
            again = f" (as {first})" if first != run else ""
            raise ConfigError(f"the run {run} is given twice{again}; give each run once (combining a run with itself "
                              "weighs it double)")


def is_hf_folder(path: str | Path) -> bool:
    """A Hugging Face model folder (config.json, as save_pretrained writes it) that is not an xformer run
    (config.yaml)."""
    return (Path(path) / "config.json").is_file() and not (Path(path) / "config.yaml").is_file()


def is_run_folder(path: str | Path) -> bool:
    """A trained run's folder, as ``xformer train`` (or ``Forecaster.save``) writes it: config.yaml and checkpoints/."""
    return (Path(path) / "config.yaml").is_file() and (Path(path) / "checkpoints").is_dir()


def replaced_copy(path: str | Path) -> Path:
    """Where ``--overwrite`` keeps the old folder ``path`` until the new one is safe: ``.NAME.replaced`` beside it."""
    path = Path(path).resolve()
    return path.with_name(f".{path.name}.replaced")


def _shown_aside(path: str | Path) -> Path:
    """``replaced_copy(path)`` as the user would type it: beside ``path`` as given (absolute for . or ..)."""
    return replaced_copy(path) if Path(path).name in ("", ".", "..") else Path(path).parent / replaced_copy(path).name


def _put_back(path: str | Path) -> str:
    """The shell commands that bring back the folder an interrupted ``--overwrite`` moved aside."""
    aside = _shown_aside(path)
    return f"rm -r {path} && mv {aside} {path}" if Path(path).exists() else f"mv {aside} {path}"


def replaced_note(path: str | Path) -> str:
    """For the end of an error about the folder ``path``: where the complete old folder lies when an
    ``--overwrite`` that was killed (before the new content was safe) left it aside, and how to put it back;
    "" when there is none. (A resume or an evaluate of ``path`` meets the half-written new folder.)"""
    if not replaced_copy(path).is_dir():
        return ""
    return (f"; the complete old folder that an interrupted --overwrite moved aside is "
            f"{_shown_aside(path)}: put it back with  {_put_back(path)}")


class OutputFolder:
    """The folder a fresh run or report writes into.

    ``OutputFolder(path, overwrite, what, alternative, marker, holds_runs, inputs)`` refuses at once (one line) a path
    that is a file, a folder holding files when ``overwrite`` is false, and one that does not hold ``marker``
    (the file every such folder has: a run's config.yaml) even with ``overwrite``: the user's data is never
    taken for a run. Also refused: a path inside a run folder (``is_run_folder``; replacing that run would delete
    it), with ``overwrite`` a folder that holds another run inside it (unless ``holds_runs``: a report's own
    runs), and any path while an earlier ``--overwrite`` of it, killed part way, has left the old folder aside
    (it may be the only complete copy: the user puts it back, or deletes it, first), and with ``overwrite`` a folder
    holding one of the ``inputs``, (option, path) pairs the command reads.
    With ``overwrite``, ``replace()`` moves the old folder aside to ``.NAME.replaced`` beside it;
    ``started()`` deletes it once the new content is safe; ``failed()`` (before ``started``) removes the new
    content and moves the old folder back. The folder is claimed (``hold_folder``) for as long as the object
    lives: a second process given the same folder is refused at once, so ``failed`` only ever removes what
    this one wrote.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, what: str = "run", alternative: str = "",
                 marker: str | None = None, holds_runs: bool = False, inputs=()):
        self.path, self.what = Path(path), what
        self.aside: Path | None = None
        self.safe = False
        _check_nothing_aside(self.path, what)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not {a_or_an(what)} folder; give a new folder")
        above = next(p for p in self.path.absolute().parents if p.exists())
        if not above.is_dir():
            raise ConfigError(f"{self.path}: {above} is a file, so no folder can be made there; give {a_or_an(what)} "
                              "folder in a folder")
        outer = next((p for p in self.path.resolve().parents if is_run_folder(p)), None)
        if outer is not None:
            raise ConfigError(f"{self.path} is inside the run folder {outer}, which holds that run's own files (an "
                              f"--overwrite of the run would delete it); give {a_or_an(what)} folder outside it")
        # claimed before it is looked at: of two processes given the same folder, the second is refused here
        self.lock = hold_folder(self.path, lambda holder: f"{self.path} is being written by {holder}; wait for it "
                                                          f"to end, or give another folder for the {what}")
        self.foreign = False  # content that appeared after the check: not ours to remove
        try:
            self._check(overwrite, alternative, marker, holds_runs)
            self._check_inputs_apart(inputs)
        except BaseException:
            self.release()
            raise

    def _check(self, overwrite: bool, alternative: str, marker: str | None, holds_runs: bool) -> None:
        what = self.what
        self.created = not self.path.exists()
        self.replacing = self.path.is_dir() and any(self.path.iterdir())
        foreign = marker is not None and not (self.path / marker).exists()
        if self.replacing and not overwrite and foreign:  # --overwrite would refuse it too: not offered
            raise ConfigError(f"{self.path} already holds files but no {marker}, so it is not the folder of "
                              f"{a_or_an(what)} (--overwrite replaces only that); give a new folder for the {what}")
        if self.replacing and not overwrite:
            raise ConfigError(f"{self.path} already holds files; give a new folder for the {what}, "
                              f"{alternative + ', ' if alternative else ''}or add --overwrite to replace it")
        if self.replacing and Path.cwd().resolve().is_relative_to(self.path.resolve()):
            raise ConfigError(f"--overwrite would replace {self.path}, which holds the current folder; "
                              f"give {a_or_an(what)} folder of its own")
        if self.replacing and foreign:
            raise ConfigError(f"{self.path} holds files but no {marker}, so it is not the folder of {a_or_an(what)}, "
                              "and --overwrite replaces only that; give a new folder")
        inner = None if holds_runs or not self.replacing else _run_inside(self.path)
        if inner is not None:
            raise ConfigError(f"--overwrite would delete the run folder {inner}, which lies inside {self.path}; move "
                              f"it out first, or give another folder for the {what}")

    def _check_inputs_apart(self, inputs) -> None:
        """No (option, path) the command reads lies in the folder it replaces: --overwrite would delete it."""
        here = self.path.resolve()
        for option, item in inputs if self.replacing else ():
            source = Path(item).resolve()
            if source == here or source.is_relative_to(here):
                raise ConfigError(f"{option} {item} lies inside {self.path}, which --overwrite would replace (deleting "
                                  f"it); move it out first, or give another folder for the {self.what}")

    def replace(self) -> None:
        """Move the old folder aside (only with overwrite, only when it holds files) and make a new one."""
        if self.replacing and self.aside is None:
            _check_nothing_aside(self.path, self.what)  # never over the only complete copy of an earlier one
            self.aside = replaced_copy(self.path)
            os.replace(self.path, self.aside)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.created and any(self.path.iterdir()):  # written meanwhile by something that takes no lock
            self.foreign = True
            raise ConfigError(f"{self.path} was created and filled by another program after it was checked; give "
                              f"a new folder for the {self.what}")

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
        runs a ``--resume`` continues from). Either way the claim on the folder ends here."""
        try:
            if not (self.safe or self.foreign):
                self._undo(keep_partial)
        finally:
            self.release()  # nothing more is written: a rerun in another process may claim the folder at once

    def release(self) -> None:
        """Give up the claim on the folder (also when this object is garbage, or the process ends)."""
        if self.lock is not None:
            self.lock.release()

    def _undo(self, keep_partial: bool) -> None:
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


def _check_nothing_aside(path: Path, what: str) -> None:
    """Refuse ``path`` while an interrupted ``--overwrite`` of it has left the old folder aside: the new one
    was never made safe, so the old one may be the only complete copy, and only the user knows which to keep."""
    if replaced_copy(path).exists():
        aside = _shown_aside(path)
        raise ConfigError(f"{aside} holds the old {what} that an interrupted --overwrite of {path} moved aside (the "
                          f"last complete copy); put it back first with  {_put_back(path)}  or, if it is not wanted, "
                          f"delete it (rm -r {aside}); then run the command again")


def _run_inside(folder: Path) -> Path | None:
    """A run folder (``is_run_folder``) somewhere below ``folder``, not ``folder`` itself; None if there is none."""
    for top, dirs, _ in os.walk(folder):
        if Path(top) != folder and is_run_folder(top):
            return Path(top)
        dirs[:] = [d for d in dirs if d != "checkpoints"]  # a run's checkpoints hold no run
    return None
