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
The temporaries a save killed part-way leaves behind are removed by the next save or resume.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from ..folders import replaced_note, write_atomically

POINTER = "latest.json"
MODEL_FILE, EMA_FILE = "model.safetensors", "ema.safetensors"


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


def _fsync_write(path: Path, write) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def read_pointer(root: Path) -> dict:
    path = Path(root) / POINTER
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {root}: {POINTER} is missing; train first (xformer train ...)"
                              f"{replaced_note(Path(root).parent)}")
    try:
        pointer = json.loads(path.read_text())
    except ValueError:  # not JSON, or not UTF-8 text
        pointer = None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("latest"), str):
        raise CheckpointError(f"{path} is corrupt; write {{\"latest\": \"step_N\"}} into it, naming a checkpoint "
                              f"folder beside it")
    return pointer


def save_checkpoint(root: Path, step: int, weights: dict[str, torch.Tensor], trainer: dict, state: dict,
                    aliases: set[str], keep_last: int, is_best: bool,
                    ema: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint ``step_{step}`` atomically, point latest.json at it, prune old ones.
    ``ema``: the moving average of the weights (train.ema), stored as ema.safetensors."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    name = f"step_{step:08d}"
    tmp = root / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = {MODEL_FILE: weights, EMA_FILE: ema} if ema is not None else {MODEL_FILE: weights}
    for file, tensors in files.items():
        tensors = {k: v.detach().contiguous() for k, v in tensors.items() if k not in aliases}
        save_file(tensors, tmp / file, metadata={"step": str(step)})
    _fsync_write(tmp / "trainer.pt", lambda f: torch.save(trainer, f))
    sizes = {f: (tmp / f).stat().st_size for f in (*files, "trainer.pt")}
    _fsync_write(tmp / "state.json", lambda f: f.write(json.dumps({**state, "files": sizes}, indent=1).encode()))
    final = root / name
    if final.exists():  # the same step saved again (e.g. the final save right after a periodic one)
        shutil.rmtree(final)
    os.replace(tmp, final)

    pointer = read_pointer(root) if (root / POINTER).is_file() else {}
    pointer["latest"] = name
    if is_best:
        pointer["best"] = name
    write_atomically(root / POINTER, json.dumps(pointer, indent=1))
    _prune(root, keep_last, keep={pointer["latest"], pointer.get("best")})
    return final


def remove_stale_temporaries(root: Path) -> None:
    """Delete what a save killed part-way left behind (``.step_N.tmpPID/``, ``.latest.json.tmpPID``):
    each can be as large as a checkpoint, and nothing else would ever read or remove it."""
    for path in Path(root).glob(".*.tmp*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _prune(root: Path, keep_last: int, keep: set) -> None:
    steps = sorted(p.name for p in root.glob("step_*") if p.is_dir())
    for name in steps[:-keep_last]:
        if name not in keep:
            shutil.rmtree(root / name)


def checkpoint_dir(root: Path, which: str = "latest") -> Path:
    """The folder of the latest (or best, falling back to latest) checkpoint under ``root``."""
    pointer = read_pointer(root)
    return Path(root) / pointer.get(which, pointer["latest"])


def read_state(path: Path) -> dict:
    """state.json of a checkpoint folder, after checking every file has its recorded size."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} is incomplete: state.json is missing") from None
    except ValueError:  # not JSON, or not UTF-8 text
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise CheckpointError(f"checkpoint {path}/state.json is truncated or corrupt; resume from an earlier "
                              "checkpoint (point checkpoints/latest.json at it) or retrain")
    for file, size in state["files"].items():
        actual = (path / file).stat().st_size if (path / file).is_file() else 0
        if actual != size:
            raise CheckpointError(f"checkpoint file {path / file} is truncated or corrupt ({actual} bytes, "
                                  f"expected {size}); resume from an earlier checkpoint or retrain")
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
