"""Checkpoints that survive crashes and never execute code when loaded.

A run folder keeps

    checkpoints/step_00000100/model.safetensors   weights (tied copies stored once)
                             /ema.safetensors     their moving average, only when train.ema is enabled
                             /trainer.pt          optimizer, scheduler, RNG states (tensors only)
                             /state.json          step, epoch, sampler position, best metric, file sizes,
                                                  schedule length, seconds trained so far (all sessions),
                                                  the experiment (config.yaml's content)
    checkpoints/latest.json                       {"latest": "step_00000100", "best": "step_00000080"}

A checkpoint is written into a temporary folder that is renamed into place
(os.replace) only when complete; then latest.json is replaced the same way,
and only then are old checkpoints pruned. A crash at any moment leaves
latest.json pointing at a complete checkpoint. Loading reads safetensors,
JSON, and torch.load(weights_only=True), none of which can run code; a file
whose size differs from the one recorded at save time is reported as truncated.
A save that fails (a full disk) removes its temporary folder at once and raises the OSError; one whose
process was killed leaves ``.NAME.tmpPID`` behind, removed by the next save or resume once process PID is
gone (never the temporaries of a live process). A failure to prune an old checkpoint stops nothing.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from ..folders import replaced_note, temporary, write_atomically

POINTER = "latest.json"
MODEL_FILE, EMA_FILE = "model.safetensors", "ema.safetensors"
AVERAGED_FILE = "averaged.json"  # in a run folder that is an average of checkpoints (xformer/train/average.py)


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated or does not fit the model."""


def tied_aliases(model: nn.Module) -> set[str]:
    """Names of parameters that are the same tensor as an earlier one (e.g. a tied LM head)."""
    seen, aliases = {}, set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            aliases.add(name)
        seen.setdefault(id(p), name)
    return aliases


def read_pointer(root: Path) -> dict:
    path = Path(root) / POINTER
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {root}: {POINTER} is missing; train first (xformer train ...)"
                              f"{replaced_note(Path(root).parent)}")
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # not JSON, or not UTF-8 text
        pointer = None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("latest"), str):
        raise CheckpointError(f"{path} is corrupt; write {{\"latest\": \"step_N\"}} into it, naming a checkpoint "
                              f"folder beside it")
    return pointer


def save_checkpoint(root: Path, step: int, weights: dict[str, torch.Tensor], trainer: dict, state: dict,
                    aliases: set[str], keep_last: int, is_best: bool, ema: dict[str, torch.Tensor] | None = None,
                    prune_failed: Callable[[OSError], None] | None = None) -> Path:
    """Write checkpoint ``step_{step}`` atomically, point latest.json at it, prune old ones.
    ``ema``: the moving average of the weights (train.ema), stored as ema.safetensors. A write that fails
    raises the OSError (naming the file) once the temporary folder is removed; an old checkpoint that cannot
    be deleted is left, and ``prune_failed`` told (default: a warning line on stderr)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    name = f"step_{step:08d}"
    tmp, final = temporary(root / name), root / name
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        files = {MODEL_FILE: weights, EMA_FILE: ema} if ema is not None else {MODEL_FILE: weights}
        for file, tensors in files.items():
            tensors = {k: v.detach().contiguous() for k, v in tensors.items() if k not in aliases}
            _save_tensors(tensors, tmp / file, step)
        _fsync_write(tmp / "trainer.pt", lambda f: torch.save(trainer, f))
        sizes = {f: (tmp / f).stat().st_size for f in (*files, "trainer.pt")}
        _fsync_write(tmp / "state.json", lambda f: f.write(json.dumps({**state, "files": sizes}, indent=1).encode()))
        _move_into_place(tmp, final)
    except BaseException:  # a full disk: the partial checkpoint goes at once, not at the next save
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    pointer = read_pointer(root) if (root / POINTER).is_file() else {}
    pointer["latest"] = name
    if is_best:
        pointer["best"] = name
    write_atomically(root / POINTER, json.dumps(pointer, indent=1))
    _prune(root, keep_last, {pointer["latest"], pointer.get("best")}, prune_failed or _warn_prune_failed)
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """``os.replace(tmp, final)``. The same step saved again (the final save right after a periodic one): the old
    folder is renamed aside first (``.NAME.old.tmpPID``) and deleted only after, so that ``final``, which
    latest.json may name, is missing only between two renames; a process killed there leaves the aside copy,
    which ``checkpoint_dir`` reads and ``remove_stale_temporaries`` puts back."""
    aside = temporary(final.with_name(f"{final.name}.old")) if final.exists() else None
    if aside is not None:
        os.replace(final, aside)
    try:
        os.replace(tmp, final)
    except BaseException:
        if aside is not None:
            os.replace(aside, final)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, step: int) -> None:
    """safetensors' ``save_file``, whose I/O errors (a full disk) come back as the OSError they are."""
    try:
        save_file(tensors, path, metadata={"step": str(step)})
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from None
    except OSError as e:
        if e.filename is None:  # name the file: the line the user reads says where the disk was full
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


class _WriteAll:
    """A file whose ``write`` writes everything or raises, and keeps what it raised: torch.save takes a short
    write (a disk filling up) for a format error ("unexpected pos"), and, while closing after an OSError, raises
    such a RuntimeError in its place; the OSError kept here says what happened."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += self.file.write(view[done:]) or 0
        except OSError as e:
            self.error = e
            raise
        return done

    def flush(self) -> None:
        self.file.flush()


def _fsync_write(path: Path, write) -> None:
    with open(path, "wb", buffering=0) as f:
        writer = _WriteAll(f)
        try:
            write(writer)
            os.fsync(f.fileno())
        except (OSError, RuntimeError) as e:
            error = e if isinstance(e, OSError) else writer.error
            if error is None:
                raise
            # named: the line the user reads says where the disk was full
            raise OSError(error.errno, error.strerror, error.filename or str(path)) from None


TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")


def remove_stale_temporaries(root: Path) -> None:
    """Delete what a save (or a ``write_atomically``) killed part-way left in ``root`` (``.step_N.tmpPID/``,
    ``.latest.json.tmpPID``, in a run folder ``.metrics.json.tmpPID``): each can be as large as a checkpoint,
    and nothing else would ever read or remove it. Only those of processes that are gone (or of this one, whose
    saves are over): a live process may be writing its own. A checkpoint renamed aside for a save of the same
    step (``.step_N.old.tmpPID``) is put back when ``step_N`` itself is missing."""
    for path in Path(root).glob(".*.tmp*"):
        match = TEMPORARY.match(path.name)
        if match is None or (int(match["pid"]) != os.getpid() and _alive(int(match["pid"]))):
            continue
        kept = Path(root) / match["name"].removesuffix(".old")
        if match["name"].endswith(".old") and path.is_dir() and not kept.exists():
            os.replace(path, kept)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process
        return True
    return True


def _prune(root: Path, keep_last: int, keep: set, failed: Callable[[OSError], None]) -> None:
    steps = sorted(p.name for p in root.glob("step_*") if p.is_dir())
    for name in steps[:-keep_last]:
        if name not in keep:
            try:
                shutil.rmtree(root / name)
            except OSError as e:  # the new checkpoint is saved: an old one left over stops nothing
                failed(e)
                return


def _warn_prune_failed(error: OSError) -> None:
    print(f"xformer: warning: cannot delete an old checkpoint ({error}); it is left in place", file=sys.stderr)


def kept_steps(root: Path, but: Path | None = None) -> list[str]:
    """The complete-looking checkpoints under ``root`` (folders step_N holding state.json), oldest first, as
    ``--checkpoint`` takes them (``step_8``); ``but`` left out."""
    return [f"step_{int(p.name[len('step_'):])}" for p in sorted(Path(root).glob("step_*"))
            if p.name[len("step_"):].isdigit() and (p / "state.json").is_file() and p != but]


def _instead(root: Path, but: Path | None = None) -> str:
    """For the end of an error about a checkpoint that cannot be read: the others that are kept, and how to use
    one (``--checkpoint`` of evaluate, predict, export; a resume continues from latest.json's)."""
    others = kept_steps(root, but)
    if not others:
        return "no other checkpoint is kept: retrain (xformer train ... --overwrite)"
    return (f"kept: {', '.join(others)}; give one with --checkpoint {others[-1]} (evaluate, "
            f"predict, export), or point {Path(root) / POINTER} at it to resume from it "
            f"({{\"latest\": \"step_{int(others[-1][len('step_'):]):08d}\"}})")


def checkpoint_dir(root: Path, which: str = "latest") -> Path:
    """The folder of the latest (or best, falling back to latest) checkpoint under ``root``. A folder latest.json
    names that does not exist (deleted, or pruned by hand) is refused in one line naming the kept ones."""
    root = Path(root)
    pointer = read_pointer(root)
    key = which if isinstance(pointer.get(which), str) else "latest"
    path = root / pointer[key]
    if path.is_dir():
        return path
    aside = sorted(root.glob(f".{glob.escape(pointer[key])}.old.tmp*"))  # killed between two renames
    if aside:
        return aside[0]
    raise CheckpointError(f"{root / POINTER} names {pointer[key]} as the {key} checkpoint, but {path} does not "
                          f"exist; {_instead(root)}")


def read_state(path: Path) -> dict:
    """state.json of a checkpoint folder, after checking every file has its recorded size."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist; {_instead(path.parent)}")
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} is incomplete: state.json is missing; "
                              f"{_instead(path.parent, path)}") from None
    except ValueError:  # not JSON, or not UTF-8 text
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise CheckpointError(f"checkpoint {path}/state.json is truncated or corrupt; {_instead(path.parent, path)}")
    for file, size in state["files"].items():
        actual = (path / file).stat().st_size if (path / file).is_file() else 0
        if actual != size:
            raise CheckpointError(f"checkpoint file {path / file} is truncated or corrupt ({actual} bytes, "
                                  f"expected {size}); {_instead(path.parent, path)}")
    return state


def read_weights(path: Path, file: str = MODEL_FILE) -> dict[str, torch.Tensor]:
    """The trained weights of a checkpoint folder (``file=EMA_FILE``: their moving average)."""
    read_state(path)
    if file == EMA_FILE and not (Path(path) / file).is_file():
        raise CheckpointError(f"checkpoint {path} holds no {EMA_FILE}: it was saved with train.ema.enabled=false; "
                              "resume it with the same setting (train.ema.enabled=false)")
    try:
        return load_file(Path(path) / file)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read {Path(path) / file}: {e}") from None


def read_eval_weights(path: Path) -> dict[str, torch.Tensor]:
    """The weights a run is evaluated with: the moving average where the checkpoint holds one
    (a run with train.ema), else the trained weights."""
    return read_weights(path, EMA_FILE if (Path(path) / EMA_FILE).is_file() else MODEL_FILE)


def read_trainer(path: Path) -> dict:
    try:
        return torch.load(Path(path) / "trainer.pt", weights_only=True, map_location="cpu")
    except Exception as e:  # unpickling errors of every kind: the file is not what we wrote
        raise CheckpointError(f"cannot read {Path(path) / 'trainer.pt'}: {str(e).splitlines()[0]}") from None


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load into ``model``; tied copies (stored once) are restored by the tie itself."""
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # torch lists every tensor of another shape, one line each: name the first
        first = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e).splitlines()[0])
        raise CheckpointError(f"checkpoint does not fit the model ({first.rstrip('.')}); is config.yaml the run's "
                              "own?") from None
    missing = set(missing) - tied_aliases(model)
    if missing or unexpected:
        names = sorted(missing)[:3] + sorted(unexpected)[:3]
        raise CheckpointError(f"checkpoint does not fit the model (missing {len(missing)}, unexpected "
                              f"{len(unexpected)} weights, e.g. {', '.join(names)}); is config.yaml the run's own?")
