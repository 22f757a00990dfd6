"""Where a training step's time goes, xformer beside its reference, op class by op class.

    python benchmarks/profile_steps.py --models bert,vit,gpt2 --steps 20 [--bf16]

The pairs are those of benchmarks/reference.py (same sizes, same weights, same batch, 1 thread). Each
side runs ``--steps`` profiled training steps (forward, backward, AdamW) after 3 warm-up steps, under
``torch.profiler`` (CPU), the two sides alternating in chunks of 5 steps; every aten op's *self* time is put in one class (matmul, attention, norm,
activation, casts and copies, optimizer, other) and divided by the number of steps. If both sides spend
the same milliseconds in each class, nothing above the kernels is left to win in eager mode; a class where
one side spends more names where the difference is.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import PAIRS, SIZES, training_step  # noqa: E402 - benchmarks/reference.py, beside this script

CLASSES = [  # (class, substrings of op names), first match wins
    ("autograd engine", ("autograd::",)),  # the engine's own time around each backward node
    ("attention", ("scaled_dot_product", "_flash_attention", "_efficient_attention", "softmax")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
                "aten::dot", "aten::addmv")),
    ("norm", ("layer_norm", "batch_norm", "rms_norm")),
    ("activation", ("gelu", "relu", "silu", "tanh")),
    ("casts and copies", ("aten::copy_", "aten::_to_copy", "aten::to", "aten::clone", "aten::contiguous",
                          "aten::cat", "aten::_unsafe_view", "aten::reshape", "aten::view", "aten::transpose",
                          "aten::permute", "aten::expand", "aten::t", "aten::split", "aten::unbind",
                          "aten::chunk", "aten::select", "aten::slice", "aten::as_strided")),
    ("optimizer", ("Optimizer", "_foreach", "aten::lerp", "aten::addcmul", "aten::addcdiv", "aten::sqrt", "aten::zero_")),
    ("loss", ("cross_entropy", "nll_loss", "log_softmax", "mse_loss")),
]


def op_class(name: str) -> str:
    for cls, keys in CLASSES:
        if any(key in name for key in keys):
            return cls
    return "other"


def profile_steps(sides: dict, steps: int, chunk: int = 5) -> dict[str, tuple[dict[str, float], float]]:
    """Per side: milliseconds per step of self CPU time per op class, and wall milliseconds per step.
    The sides alternate in chunks of ``chunk`` profiled steps (A B, then B A, ...), so that a change in the
    machine's load falls on both: memory-bound ops (activations, copies) move with the other jobs' traffic."""
    per_class = {side: defaultdict(float) for side in sides}
    wall = dict.fromkeys(sides, 0.0)
    for step in sides.values():
        for _ in range(3):
            step()
    names = list(sides)
    for i in range(max(1, steps // chunk)):
        for side in (names if i % 2 == 0 else names[::-1]):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                for _ in range(chunk):
                    sides[side]()
                wall[side] += time.perf_counter() - start
            for event in prof.key_averages():
                per_class[side][op_class(event.key)] += event.self_cpu_time_total / 1000
    n = max(1, steps // chunk) * chunk
    return {side: ({c: t / n for c, t in per_class[side].items()}, wall[side] * 1000 / n) for side in sides}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="bert,vit,gpt2")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides")
    parser.add_argument("--out", type=Path, default=None, help="a JSON file for the tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(PAIRS))
    if unknown:
        print(f"unknown model(s) {unknown}; choose from {', '.join(PAIRS)}", file=sys.stderr)
        sys.exit(2)
    results = {}
    for name in names:
        ours, our_loss, ref, ref_loss, batch, what = PAIRS[name](SIZES[name][0], "cpu")
        sides = {"xformer": training_step(ours, our_loss, batch, "cpu", args.bf16),
                 "reference": training_step(ref, ref_loss, batch, "cpu", args.bf16)}
        measured = profile_steps(sides, args.steps)
        classes = sorted({c for per_class, _ in measured.values() for c in per_class},
                         key=lambda c: -measured["xformer"][0].get(c, 0.0))
        title = f"{name}{' bf16 autocast' if args.bf16 else ''}: {what}"
        print(f"\n{title}\n| op class | xformer ms/step | reference ms/step |\n|---|---|---|")
        for c in classes:
            print(f"| {c} | {measured['xformer'][0].get(c, 0.0):.2f} | {measured['reference'][0].get(c, 0.0):.2f} |")
        print(f"| wall (profiled) | {measured['xformer'][1]:.2f} | {measured['reference'][1]:.2f} |")
        results[name] = {"reference": what, "bf16": args.bf16, "steps": args.steps,
                         "ms_per_step": {side: per_class for side, (per_class, _) in measured.items()},
                         "wall_ms_per_step": {side: wall for side, (_, wall) in measured.items()}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
