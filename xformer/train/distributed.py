"""Data parallelism on PyTorch's own engines: torchrun + DDP or FSDP2 (gloo on CPU, NCCL on GPU).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them training runs in one
process and every helper here is the identity. Each rank sees a different
shard of every global batch (DistributedSampler); DDP and FSDP2 average the
gradients over ranks, which the trainer turns into a token-weighted mean
(see Trainer._step).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..config import ConfigError


@dataclass
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` (CUDA when there is a GPU, else CPU) or a device torch names; one that is absent is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}={name} is not a device name; use cpu, cuda, cuda:1, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name}, but this machine has no CUDA GPU; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{key}={name}, but this machine has {torch.cuda.device_count()} GPU(s); "
                          "use one of them")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}={name}, but MPS is not available here; use cpu or auto")
    return device


def init_world(device: str) -> World:
    """Join the process group torchrun describes (if any) and pick this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = pick_device(device)
    if size == 1:
        return World(device=chosen)
    if chosen.type == "cuda":
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if local_rank >= gpus:  # one process per GPU: a second process on one GPU is NCCL's "invalid device ordinal"
            raise ConfigError(f"torchrun started process {local_rank} of this machine, but it has {gpus} GPU(s): "
                              f"use --nproc_per_node {gpus} (one process per GPU), or train.device=cpu")
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return World(dist.get_rank(), size, chosen)


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, strategy: str, world: World) -> nn.Module:
    """DDP (a full replica per rank) or FSDP2 (each core block and the root sharded over ranks)."""
    if world.size == 1:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for module in list(model.modules()):
            if isinstance(getattr(module, "blocks", None), nn.ModuleList):
                for block in module.blocks:
                    fully_shard(block)
        return fully_shard(model)
    ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


@contextlib.contextmanager
def grad_sync(engine: nn.Module, enabled: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation."""
    engine = getattr(engine, "_orig_mod", engine)  # torch.compile's wrapper of the DDP module is no DDP
    if isinstance(engine, nn.parallel.DistributedDataParallel) and not enabled:
        with engine.no_sync():
            yield
        return
    if hasattr(engine, "set_requires_gradient_sync"):  # FSDP2
        engine.set_requires_gradient_sync(enabled)
    yield


def all_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    if world.size > 1:
        dist.all_reduce(values)
    return values


def gather(obj, world: World) -> list:
    """Every rank's ``obj`` on every rank (used for the per-rank RNG states)."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> tuple[dict, dict]:
    """Unsharded model and optimizer state on CPU (collective under FSDP2: every rank calls it)."""
    if not sharded:
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, weights: dict,
                    optim_state: dict | None, sharded: bool, load_weights) -> None:
    """Inverse of full_state; ``load_weights(model, weights)`` handles the unsharded model."""
    if not sharded:
        load_weights(model, weights)
        if optimizer is not None:
            optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, \
        set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, optim_state, options=options)
