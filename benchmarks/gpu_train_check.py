"""Training on a CUDA GPU through the command line, as a user runs it (GPU check, part 4).

    python benchmarks/gpu_train_check.py --data DIR [--part smoke|full] [--work DIR] [--out PATH] [--device cpu]

DIR holds tinyshakespeare.txt and ETTh1.csv (``../shared/data`` beside the repository). Two parts, one a call:

- smoke (the default): five recipes, each trained in its own ``python -m xformer train`` process for a few steps with
  ``train.device=cuda`` and bf16 autocast (the GPT also in fp32), several at once (one GPU holds them all). Each
  passes when the run finishes with a finite test loss (validation loss for the GPT: text_lm has no test split),
  ``xformer evaluate`` of the run folder gives back that loss (relative difference <= 1e-3), and the domain's
  command reads the run: ``generate --device cuda`` (GPT, encoder-decoder), ``predict --device cuda`` on PNGs
  written here (CCT, ViT), ``forecast`` (PatchTST).
- full: recipes trained to the end on the GPU one after the other, each timed from process start to
  exit, with the figures they reach: tasks/char_gpt_shakespeare.yaml in bf16 and tasks/cct_digits.yaml seeds 0-2.

Prints one JSON line per run and writes them all to ``--out``; exits 1 when a run fails. ``--device cpu`` runs
the same on the CPU (a check of the script, not of the GPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
SHORT = ["train.steps=40", "train.eval_every=20"]


def xformer(*args, timeout: float = 240) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "xformer", *map(str, args)], capture_output=True, text=True,
                              env=ENV, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(args, 124, "", f"timed out after {timeout} s")
    return done, time.perf_counter() - start


def smoke_recipes(data: Path, work: Path, device: str) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (train arguments, the domain command's arguments with RUN for the run folder)."""
    pngs = work / "digits_png"
    return {
        "char_gpt bf16": (["tasks/char_gpt_shakespeare.yaml", f"data.args.files={data / 'tinyshakespeare.txt'}",
                           "train.precision=bf16", *SHORT],
                          ["generate", "RUN", "--prompt", "ROMEO:", "--max-new-tokens", "40", "--device", device]),
        "char_gpt fp32": (["tasks/char_gpt_shakespeare.yaml", f"data.args.files={data / 'tinyshakespeare.txt'}",
                           "train.precision=fp32", *SHORT],
                          ["generate", "RUN", "--prompt", "ROMEO:", "--greedy", "--max-new-tokens", "40",
                           "--device", device]),
        "seq2seq bf16": (["tasks/seq2seq_text.yaml", "train.precision=bf16", *SHORT],
                         ["generate", "RUN", "--prompt", "the cat sat on the mat", "--greedy", "--device", device]),
        "cct_digits bf16": (["tasks/cct_digits.yaml", "train.precision=bf16", *SHORT],
                            ["predict", "RUN", str(pngs), "--device", device, "--top-k", "3"]),
        "vit_digits bf16": (["tasks/vit_digits.yaml", "train.precision=bf16", *SHORT],
                            ["predict", "RUN", str(pngs), "--device", device, "--top-k", "3"]),
        "patchtst_etth1_96 bf16": (["tasks/patchtst_etth1_96.yaml", f"data.args.path={data / 'ETTh1.csv'}",
                                    "train.precision=bf16", "train.epochs=1"],
                                   ["forecast", "RUN", "--data", str(data / "ETTh1.csv")]),
    }


def write_digit_pngs(folder: Path, count: int = 12) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    for i in range(count):
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i}_label{digits.target[i]}.png")


def smoke(name: str, train_args: list[str], command: list[str], work: Path, device: str) -> dict:
    run = work / name.replace(" ", "_")
    row: dict = {"part": "smoke", "run": name}
    done, seconds = xformer("train", *train_args, f"train.device={device}", "--out", run)
    row["train_seconds"] = round(seconds, 1)
    if done.returncode != 0:
        return {**row, "ok": False, "failed": "train", "stderr": done.stderr[-1500:]}
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    key = "test_loss" if "test_loss" in metrics else "val_loss"  # a text_lm run has no test split
    row["loss"] = key
    row[key] = metrics.get(key)
    evaluated, _ = xformer("evaluate", run)
    if evaluated.returncode != 0:
        return {**row, "ok": False, "failed": "evaluate", "stderr": evaluated.stderr[-1500:]}
    row["evaluate_" + key] = json.loads(evaluated.stdout).get(key)
    used, _ = xformer(*[str(run) if a == "RUN" else a for a in command])
    row["command"] = command[0]
    row["command_output"] = used.stdout[:300]
    if used.returncode != 0:
        return {**row, "ok": False, "failed": command[0], "stderr": used.stderr[-1500:]}
    a, b = row[key], row["evaluate_" + key]
    row["ok"] = a is not None and b is not None and math.isfinite(a) and abs(a - b) <= 1e-3 * max(1.0, abs(a))
    return row


def full(name: str, args: list[str], work: Path, keys: tuple[str, ...], device: str) -> dict:
    run = work / ("full_" + name.replace(" ", "_"))
    done, seconds = xformer("train", *args, f"train.device={device}", "--out", run, timeout=200)
    row = {"part": "full", "run": name, "ok": done.returncode == 0, "wall_seconds": round(seconds, 1)}
    if done.returncode != 0:
        return {**row, "stderr": done.stderr[-1500:]}
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    return {**row, **{k: metrics.get(k) for k in ("steps", *keys)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--work", type=Path, help="where the runs go (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu_train_check.json")
    parser.add_argument("--part", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the script")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_train_check: no CUDA device is present; nothing run")
        raise SystemExit(2)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_train_check_"))
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    result = {"gpu": gpu, "torch": torch.__version__, "part": args.part,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "all_ok": True, "rows": []}

    def record(row: dict) -> None:  # written after every run: a part stopped at its time limit keeps what it did
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
        result["all_ok"] = all(r["ok"] for r in result["rows"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    if args.part == "smoke":
        write_digit_pngs(work / "digits_png")
        with ThreadPoolExecutor(max_workers=6) as pool:
            jobs = [pool.submit(smoke, name, *recipe, work, args.device)
                    for name, recipe in smoke_recipes(args.data, work, args.device).items()]
            for job in as_completed(jobs):
                record(job.result())
    else:
        shakespeare = f"data.args.files={args.data / 'tinyshakespeare.txt'}"
        runs = [("char_gpt_shakespeare bf16", ["tasks/char_gpt_shakespeare.yaml", shakespeare, "train.precision=bf16"],
                 ("val_loss",))]
        runs += [(f"cct_digits seed {s}", ["tasks/cct_digits.yaml", f"train.seed={s}"], ("test_accuracy",))
                 for s in range(3)]
        for name, train_args, keys in runs:
            record(full(name, train_args, work, keys, args.device))
    print(f"gpu_train_check: {'all passed' if result['all_ok'] else 'FAILURES'}; wrote {args.out}")
    raise SystemExit(0 if result["all_ok"] else 1)


if __name__ == "__main__":
    main()
