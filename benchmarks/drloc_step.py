"""What dense relative localization costs per training step: the digits CCT recipe's model (tasks/cct_digits.yaml:
d_model 64, 2 layers, one conv block -> 4x4 tokens, attention pooling) with the plain ``classification`` head
against ``classification_drloc`` at h = 512 (the reference's MLP) and h = 128, one AdamW step on a batch of 64
8x8 images, each pair alternated in one process; medians and ratios, and the plain head against itself as the
noise floor.

    OMP_NUM_THREADS=1 python benchmarks/drloc_step.py [--pairs 7] [--steps 50] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import alternate  # noqa: E402

from xformer import CoreConfig, ModelConfig, PartConfig, build_model  # noqa: E402

CORE = CoreConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128, norm_eps=1e-6, init="torch")
TOKENIZER = PartConfig("image_conv", {"image_size": 8, "channels": 1, "n_conv_layers": 1, "positions": "learned"})


def stepper(head: str, steps: int, **args):
    torch.manual_seed(0)
    model = build_model(ModelConfig("encoder", CORE, TOKENIZER,
                                    PartConfig(head, {"n_classes": 10, "pool": "attention", **args}))).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {"images": torch.randn(64, 1, 8, 8), "labels": torch.randint(0, 10, (64,))}

    def run():
        for _ in range(steps):
            loss = model(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plain = stepper("classification", args.steps)
    rows = [("classification (self vs self)", stepper("classification", args.steps)),
            ("classification_drloc, h 512", stepper("classification_drloc", args.steps)),
            ("classification_drloc, h 128", stepper("classification_drloc", args.steps, hidden_dim=128))]
    print("| head | ms per step | plain head, same pairs | ratio |\n|---|---|---|---|")
    for name, other in rows:
        base, new = alternate(plain, other, args.pairs)
        b, n = statistics.median(base) / args.steps * 1e3, statistics.median(new) / args.steps * 1e3
        print(f"| {name} | {n:.2f} | {b:.2f} | {n / b:.2f} |")


if __name__ == "__main__":
    main()
