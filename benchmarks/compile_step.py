"""A GPT training step eager and under torch.compile, before and after the graph breaks were removed.

    mkdir -p /tmp/before_compile && git archive 4bfbb87 xformer | tar -x -C /tmp/before_compile
    mv /tmp/before_compile/xformer /tmp/before_compile/xformer_before
    sed -i 's/"xformer\\.\\(tokenizers\\|heads\\|baselines\\)"/"xformer_before.\\1"/' \\
        /tmp/before_compile/xformer_before/models.py
    python benchmarks/compile_step.py [--before /tmp/before_compile] [--threads 1] [--repeats 20] [--batch padded]

The GPT of ``tasks/char_gpt_shakespeare.yaml`` (vocabulary 65, 64 positions) on batches of 12 sequences:
``--batch padded``, one batch of 64 tokens with an ``attention_mask`` that left-pads every other row (as a
batch of prompts; pad_collate pads on the right), the batch on which the text tokenizer of 4bfbb87 broke the
graph (``bool(mask.all())``, ``int(pos.max())``, ``Tokens``' default factory); ``--batch plain``, no mask (only
the default factory broke it); ``--batch lengths``, six padded batches of 64 .. 24 tokens in turn, as padded
text batches vary in length (each new length recompiled the pieces after a break). ``--before`` is a folder
holding the package of 4bfbb87 renamed ``xformer_before`` (as core_step.py's). A step is forward, backward
and an AdamW step on each batch; ``torch.compile(model)`` is what ``train.compile: true`` does (trainer.py),
Inductor on the CPU. Pairs alternate (A B, then B A) after one warm-up step each; each row gives
the medians, and the median of the per-pair ratios B / A with its quartiles. "eager vs eager" times two copies
of the eager model: the noise floor. The warm-up seconds of a compiled model are its compilation (Inductor's
cache in /tmp/torchinductor_$USER shortens a second run). Writes benchmarks/results/compile_step_BATCH.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from core_step import build, side_by_side  # benchmarks/core_step.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RECIPE, TOKENIZER_ARGS = "char_gpt_shakespeare", {"vocab_size": 65, "max_positions": 64}


def make_batches(kind: str) -> list[dict]:
    """One batch 12 x 64 (``padded``: left padding in every other row, 4 .. 44 pad tokens; ``plain``: no mask),
    or ``lengths``: padded batches of 64, 56, 48, 40, 32 and 24 tokens, as padded text batches vary."""
    torch.manual_seed(1)
    batches = []
    for n in (64, 56, 48, 40, 32, 24) if kind == "lengths" else (64,):
        batch = {"input_ids": torch.randint(0, 65, (12, n)), "labels": torch.randint(0, 65, (12, n))}
        if kind != "plain":
            mask = torch.ones(12, n, dtype=torch.bool)
            for row in range(0, 12, 2):
                mask[row, : min(4 * row + 4, n - 1)] = False
            batch["attention_mask"] = mask
            batch["labels"] = batch["labels"].masked_fill(~mask, -100)
        batches.append(batch)
    return batches


def training_steps(model: torch.nn.Module, batches: list[dict]):
    """Forward, backward and an AdamW step on each of ``batches`` in turn."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        for batch in batches:
            model(batch)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()

    return step


def warmed(step) -> tuple:
    """``step`` after one call, and that call's seconds (a compiled model's compilation)."""
    start = time.perf_counter()
    step()
    return step, round(time.perf_counter() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="/tmp/before_compile", help="folder holding the package xformer_before")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", choices=("padded", "plain", "lengths"), default="padded")
    args = parser.parse_args()
    sys.path.insert(0, args.before)
    torch.set_num_threads(args.threads)
    batches = make_batches(args.batch)
    names = {"eager": "xformer", "eager copy": "xformer", "compiled": "xformer", "compiled before": "xformer_before"}
    models = {name: build(package, RECIPE, TOKENIZER_ARGS, {}) for name, package in names.items()}
    steps, compile_seconds = {}, {}
    for name, model in models.items():
        model.load_state_dict(models["eager"].state_dict())  # strict: the same names, the same weights
        if name.startswith("compiled"):
            model = torch.compile(model)
        steps[name], compile_seconds[name] = warmed(training_steps(model, batches))
    result = {"machine": f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d %H:%M"), "batch": args.batch, "repeats": args.repeats,
              "warm_up_seconds": compile_seconds, "rows": []}
    print(f"GPT, --batch {args.batch}, {len(batches)} batch(es) a step; warm-up seconds {compile_seconds}")
    for a, b in (("eager", "eager copy"), ("eager", "compiled"), ("eager", "compiled before"),
                 ("compiled before", "compiled")):
        row = side_by_side(steps[a], steps[b], args.repeats)
        result["rows"].append({"pair": f"{a} vs {b}", **row})
        print(f"{a + ' vs ' + b:32s} {row['a_ms']:8.1f} ms {row['b_ms']:8.1f} ms  ratio B / A {row['ratio']:.3f} "
              f"(quartiles {row['ratio_quartiles'][0]:.3f}-{row['ratio_quartiles'][1]:.3f})")
    out = ROOT / f"benchmarks/results/compile_step_{args.batch}.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
