"""CPU dropout: ``torch.nn.functional.dropout`` against xformer's ``dropout`` (U(0, 1) >= p mask).

    python benchmarks/dropout_cpu.py [--threads 1] [--repeats 15]

Times forward + backward on PatchTST/42-sized activations (batch 128 x 7 channels = 896 sequences
of 42 patches, widths 16 and 128) and one whole training step (forward, backward, Adam) of the
``tasks/patchtst_etth1_96.yaml`` model with every xformer ``Dropout`` swapped for ``nn.Dropout``
and back. The two variants alternate within one process, so both see the same machine load;
medians are reported. Writes benchmarks/results/dropout_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from xformer.core import Dropout, dropout

ROOT = Path(__file__).resolve().parents[1]


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(variants: dict, repeats: int) -> dict:
    """Median seconds of each variant, run in turn ``repeats`` times after one warm-up each."""
    for fn in variants.values():
        fn()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            times[name].append(seconds(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def patchtst_step(use_torch_dropout: bool):
    from xformer.models import build_model
    from xformer.train.config import load_experiment

    torch.manual_seed(0)
    config = load_experiment(ROOT / "tasks/patchtst_etth1_96.yaml").model
    config.tokenizer.args.update(n_channels=7, input_len=336)
    config.head.args.update(horizon=96)
    model = build_model(config).train()
    if use_torch_dropout:
        for m in model.modules():
            if isinstance(m, Dropout):
                m.__class__ = torch.nn.Dropout
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = {"inputs": torch.randn(128, 336, 7), "targets": torch.randn(128, 96, 7)}

    def step():
        model(batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d"), "p": 0.3, "rows": []}
    for width in (16, 128):
        x = torch.randn(896, 42, width, requires_grad=True)
        grad = torch.randn_like(x)
        t = compare({"torch": lambda: F.dropout(x, 0.3).backward(grad),
                     "xformer": lambda: dropout(x, 0.3).backward(grad)}, args.repeats)
        result["rows"].append({"what": f"dropout forward+backward, (896, 42, {width})", **t})
    t = compare({"torch": patchtst_step(True), "xformer": patchtst_step(False)}, args.repeats)
    result["rows"].append({"what": "PatchTST/42 training step (batch 128, ETTh1 shapes)", **t})
    for row in result["rows"]:
        row["speedup"] = round(row["torch"] / row["xformer"], 2)
        row["torch"], row["xformer"] = round(row["torch"] * 1000, 1), round(row["xformer"] * 1000, 1)
        print(f"{row['what']}: torch {row['torch']} ms, xformer {row['xformer']} ms, {row['speedup']}x")
    out = ROOT / "benchmarks/results/dropout_cpu.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
