"""One training step before and after the core builders (issue 14), side by side in one process.

    mkdir -p /tmp/before_core && git archive 2e12444 xformer | tar -x -C /tmp/before_core   # before the builders
    mv /tmp/before_core/xformer /tmp/before_core/xformer_before
    sed -i 's/"xformer\\.\\(tokenizers\\|heads\\|baselines\\)"/"xformer_before.\\1"/' /tmp/before_core/xformer_before/models.py
    python benchmarks/core_step.py [--before /tmp/before_core] [--threads 1] [--repeats 50] [--check]

``--before`` is a folder holding the earlier package renamed ``xformer_before`` (its only absolute
``xformer.`` names, the registry's submodule lists, rewritten as above). Both packages build the same model
from the same recipe, and the earlier model gets the current one's weights: PatchTST/42
(``tasks/patchtst_etth1_96.yaml``: batch 32 x 7 channels x 336 steps, horizon 96) and the character GPT of
``tasks/char_gpt_shakespeare.yaml`` (batch 12 x 64 characters, vocabulary 65). A step is forward, backward,
AdamW step. The variants alternate (A B, then B A, ...) after one warm-up step each, so both see the same
machine load; the table gives each one's median and the median of the per-repeat ratios after / before.
The "after vs after" row times two copies of the current model the same way: the noise floor.
Writes benchmarks/results/core_step.json. ``--check`` first builds every core variant of
tests/fixtures/core_state_dict_keys.json in both packages from the same seed (GPT-2 and PyTorch
initialisation) and asserts the same weights and the same training-mode output (same dropout masks).
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from timing import alternate  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # recipe, the arguments the data implies, a batch maker
    "PatchTST/42 (ETTh1 shapes, batch 32)": (
        "patchtst_etth1_96", {"n_channels": 7, "input_len": 336}, {"horizon": 96},
        lambda: {"inputs": torch.randn(32, 336, 7), "targets": torch.randn(32, 96, 7)}),
    "GPT (char_gpt_shakespeare, batch 12 x 64)": (
        "char_gpt_shakespeare", {"vocab_size": 65, "max_positions": 64}, {},
        lambda: {"input_ids": torch.randint(0, 65, (12, 64)), "labels": torch.randint(0, 65, (12, 64))}),
}


def build(package: str, recipe: str, tokenizer_args: dict, head_args: dict) -> torch.nn.Module:
    load_experiment = importlib.import_module(f"{package}.train.config").load_experiment
    build_model = importlib.import_module(f"{package}.models").build_model
    config = load_experiment(ROOT / "tasks" / f"{recipe}.yaml").model
    config.tokenizer.args.update(tokenizer_args)
    config.head.args.update(head_args)
    torch.manual_seed(0)
    return build_model(config).train()


def training_step(model: torch.nn.Module, batch: dict):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        model(batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def side_by_side(a, b, repeats: int) -> dict:
    """Medians of a and b over ``repeats`` alternating pairs (order flipped every pair), and of b / a."""
    ta, tb = alternate(a, b, repeats)
    ratios = [y / x for x, y in zip(ta, tb)]
    return {"a_ms": round(statistics.median(ta) * 1000, 2), "b_ms": round(statistics.median(tb) * 1000, 2),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)[::2]]}


def check_variants() -> None:
    """Same seed, same weights and same training-mode outputs, before and after, for every fixture variant."""
    keys = json.loads((ROOT / "tests/fixtures/core_state_dict_keys.json").read_text(encoding="utf-8"))
    packages = [(importlib.import_module(f"{p}.core"), importlib.import_module(f"{p}.models"))
                for p in ("xformer_before", "xformer")]
    for name, entry in keys["cores"].items():
        architecture = name.split("/")[0]
        for init in ("gpt2", "torch"):
            cores = []
            for core, models in packages:
                torch.manual_seed(0)
                cores.append(models.ARCHITECTURES[architecture](
                    core.CoreConfig(**keys["base"], **entry["config"], init=init)).train())
            x = torch.randn(3, 5, keys["base"]["d_model"])
            args = (x, torch.randn(3, 4, x.shape[-1])) if architecture == "encoder-decoder" else (x,)
            outputs = []
            for module in cores:
                torch.manual_seed(1)
                outputs.append(module(*args))
            before, after = (m.state_dict() for m in cores)
            assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), name
            assert torch.equal(*outputs), name
    print(f"{len(keys['cores'])} core variants x 2 initialisations: the same weights and training outputs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="/tmp/before_core", help="folder holding the package xformer_before")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--check", action="store_true", help="first check weights and outputs of every variant")
    args = parser.parse_args()
    sys.path.insert(0, args.before)
    torch.set_num_threads(args.threads)
    if args.check:
        check_variants()
    result = {"machine": f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats, "rows": []}
    for what, (recipe, tokenizer_args, head_args, make_batch) in MODELS.items():
        after = build("xformer", recipe, tokenizer_args, head_args)
        before = build("xformer_before", recipe, tokenizer_args, head_args)
        twin = build("xformer", recipe, tokenizer_args, head_args)
        before.load_state_dict(after.state_dict())  # strict: the same names, the same weights
        twin.load_state_dict(after.state_dict())
        torch.manual_seed(1)
        batch = make_batch()
        for pair, b in (("before vs after", after), ("after vs after (noise floor)", twin)):
            a = before if pair == "before vs after" else after
            row = side_by_side(training_step(a, batch), training_step(b, batch), args.repeats)
            result["rows"].append({"model": what, "pair": pair, **row})
            print(f"{what:45s} {pair:30s} {row['a_ms']:8.1f} ms {row['b_ms']:8.1f} ms  "
                  f"ratio {row['ratio']:.3f} (quartiles {row['ratio_quartiles'][0]:.3f}-{row['ratio_quartiles'][1]:.3f})")
    out = ROOT / "benchmarks/results/core_step.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
