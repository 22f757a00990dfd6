"""Char-level GPT on tinyshakespeare with nanoGPT's CPU configuration: validation loss and wall time.

    python benchmarks/char_gpt_shakespeare.py [--data ../shared/data/tinyshakespeare.txt]
                                              [--nanogpt PATH_TO_NANOGPT_CHECKOUT] [--threads N]

Runs ``tasks/char_gpt_shakespeare.yaml`` through the same code path as
``xformer train``, once as the recipe says (peak lr 3e-3) and once with
nanoGPT's learning rates (1e-3 to 1e-4), and reports for each the validation loss after 2000 iterations and
the wall time of the whole run (data, training, the 9 evaluations,
checkpoints). xformer's validation loss is the mean over *every* character of
the validation split (nanoGPT estimates it from 20 random batches).

With ``--nanogpt`` it also runs nanoGPT's own ``train.py`` with the CPU command
of its README, in the same process tree on the same machine, one after the
other, and reports both side by side with the wall-time ratio. nanoGPT is not
vendored: clone https://github.com/karpathy/nanoGPT yourself.
Results go to benchmarks/results/char_gpt_shakespeare.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from run_folders import check_fresh, clear  # benchmarks/run_folders.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]


def run_xformer(data: Path, out: Path, overrides: list[str]) -> dict:
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    config = load_experiment(ROOT / "tasks/char_gpt_shakespeare.yaml", [f"data.args.files={data}", *overrides])
    clear(out)
    start = time.perf_counter()
    metrics = train_run(config, out)
    wall = time.perf_counter() - start
    return {"val_loss": round(metrics["val_loss"], 4), "val_bits_per_character":
            round(metrics.get("val_bits_per_character", float("nan")), 4),
            "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1), "steps": metrics["steps"],
            "overrides": overrides, "run_dir": str(out)}


def run_nanogpt(checkout: Path, data: Path, threads: int) -> dict:
    """nanoGPT's README CPU command on ``data``, timed from process start to exit."""
    prep = checkout / "data/shakespeare_char"
    shutil.copyfile(data, prep / "input.txt")  # prepare.py downloads only when input.txt is missing
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, check=True, capture_output=True)
    cmd = [sys.executable, "train.py", "config/train_shakespeare_char.py", *NANOGPT_CPU, "--out_dir=out-bench"]
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"nanoGPT failed:\n{proc.stderr[-2000:]}")
    evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", proc.stdout)
    step, _, val = evals[-1]
    return {"val_loss": float(val), "step": int(step), "wall_seconds": round(wall, 1), "command": " ".join(cmd)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/tinyshakespeare.txt")
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout to run side by side")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "runs/bench-char-gpt")
    parser.add_argument("--overwrite", action="store_true", help="replace run folders left by an earlier run")
    args = parser.parse_args()
    check_fresh([args.out, Path(f"{args.out}-lr1e-3")], args.overwrite)
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found; download tinyshakespeare (see tasks/char_gpt_shakespeare.yaml)")
    torch.set_num_threads(args.threads)
    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d"),
              # the recipe (peak lr 3e-3), then the same model with nanoGPT's own learning rates
              "xformer": run_xformer(args.data, args.out, []),
              "xformer_nanogpt_lr": run_xformer(args.data, Path(f"{args.out}-lr1e-3"),
                                                ["train.lr=1e-3", "train.min_lr=1e-4"])}
    if args.nanogpt:
        result["nanogpt"] = run_nanogpt(args.nanogpt, args.data, args.threads)
        result["wall_time_ratio_xformer_over_nanogpt"] = round(
            result["xformer"]["wall_seconds"] / result["nanogpt"]["wall_seconds"], 3)
    out = ROOT / "benchmarks/results/char_gpt_shakespeare.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
