"""What train.activation_checkpointing trades: the memory autograd keeps for backward against step time.

    python benchmarks/activation_checkpointing.py [--layers 6] [--d-model 256] [--block 256] [--batch 16]
                                                  [--pairs 5] [--threads 1] [--out FILE.json]

A character GPT (vocabulary 65, as tinyshakespeare's) with and without the blocks recomputing their activations
(xformer/train/recompute.py), the same weights and batches. Memory: the bytes of every tensor autograd saves for
the backward pass during one forward (torch.autograd.graph.saved_tensors_hooks; exact and the same on every
machine; activations are what checkpointing removes, the weights and optimizer state are the same on both sides).
Time: one training step (forward, backward, AdamW), the two sides alternating for ``--pairs`` rounds after a
warm-up step each, medians and their ratio, with a plain-vs-plain row for the noise floor.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.train.recompute import checkpoint_blocks


def saved_bytes(model, batch) -> int:
    kept = [0]

    def pack(t):
        kept[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return kept[0]


def step_seconds(model, optimizer, batch) -> float:
    start = time.perf_counter()
    model(batch)["loss"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ModelConfig("decoder", CoreConfig(d_model=args.d_model, n_layers=args.layers, n_heads=8, dropout=0.1),
                         PartConfig("text", {"vocab_size": 65, "max_positions": args.block}), PartConfig("causal_lm"))
    models = {"plain": build_model(config).train()}
    models["plain (again)"] = copy.deepcopy(models["plain"])
    models["recomputed"] = copy.deepcopy(models["plain"])
    checkpoint_blocks(models["recomputed"])
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
    ids = torch.randint(0, 65, (args.batch, args.block + 1))
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    memory = {name: saved_bytes(m, batch) for name, m in models.items()}
    times = {name: [] for name in models}
    for name, m in models.items():  # warm-up
        step_seconds(m, optimizers[name], batch)
    for _ in range(args.pairs):
        for name, m in models.items():
            times[name].append(step_seconds(m, optimizers[name], batch))
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = {name: {"saved_for_backward_MiB": round(memory[name] / 2 ** 20, 1), "step_s_median": round(median[name], 3),
                   "memory_ratio": round(memory[name] / memory["plain"], 3),
                   "time_ratio": round(median[name] / median["plain"], 3)} for name in models}
    result = {"args": vars(args) | {"out": str(args.out) if args.out else None},
              "parameters": sum(p.numel() for p in models["plain"].parameters()), "rows": rows,
              "torch": torch.__version__}
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
