"""The random generators a run depends on: seeding them, and their states as a checkpoint stores them; torch's
deterministic mode for the length of a run."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def deterministic_algorithms(enabled: bool = True):
    """``train.deterministic``: torch's deterministic algorithms (and cuBLAS's fixed workspace, no cuDNN
    benchmarking) inside the block; afterwards, however it ends (Ctrl-C too), the process's own settings come back,
    so a notebook's later cells run as they did before the run."""
    if not enabled:
        yield
        return
    mode = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark, workspace = torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


def rng_state() -> dict:
    """torch, CUDA, numpy and Python generator states, as tensors and numbers (loadable weights_only)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": [version, torch.tensor(words, dtype=torch.int64), py_gauss]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, words, py_gauss = state["python"]
    random.setstate((version, tuple(words.tolist()), py_gauss))


__all__ = ["seed_everything", "deterministic_algorithms", "rng_state", "set_rng_state"]
