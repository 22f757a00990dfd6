"""Wall time of a short ``xformer train`` run (start-up, a few steps, one validation, checkpoint, final
metrics) for two source trees, alternating, with a self-vs-self row for the noise floor.

    git worktree add /tmp/before HEAD~1            # or any commit to compare against
    python benchmarks/startup.py --before /tmp/before --pairs 6

Each run is a fresh process with ``OMP_NUM_THREADS=1`` and the tree on ``PYTHONPATH`` (ahead of the
installed package), started from a temporary folder so that neither tree is the current directory.
Prints the medians and the median of the per-pair ratios after / before; the noise floor runs this
tree against itself the same way.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def run_once(tree: Path, out: Path, steps: int) -> float:
    cmd = [sys.executable, "-m", "xformer", "train", str(tree / "tasks/char_gpt_shakespeare.yaml"),
           f"data.args.files={DATA}", f"train.steps={steps}", f"train.eval_every={steps}", "--threads", "1",
           "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=out.parent, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def pairs(a: Path, b: Path, n: int, steps: int) -> tuple[list[float], list[float]]:
    """n alternating runs of each tree: A B, B A, A B, ..."""
    times_a, times_b = [], []
    with tempfile.TemporaryDirectory(prefix="xformer-startup-") as tmp:
        for i in range(n):
            order = [(a, times_a), (b, times_b)] if i % 2 == 0 else [(b, times_b), (a, times_a)]
            for j, (tree, times) in enumerate(order):
                times.append(run_once(tree, Path(tmp) / f"run{i}_{j}", steps))
    return times_a, times_b


def summary(before: list[float], after: list[float]) -> str:
    ratios = [x / y for x, y in zip(after, before)]
    return (f"{statistics.median(before):.2f} / {statistics.median(after):.2f} s, "
            f"after / before {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other source tree (a git worktree)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--noise-pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    if not (args.before / "xformer").is_dir():
        print(f"--before {args.before}: no xformer/ folder there; give a checkout, e.g. git worktree add",
              file=sys.stderr)
        sys.exit(2)
    before, after = pairs(args.before.resolve(), ROOT, args.pairs, args.steps)
    print(f"before / after ({args.pairs} pairs): {summary(before, after)}")
    self_a, self_b = pairs(ROOT, ROOT, args.noise_pairs, args.steps)
    print(f"noise floor, this tree twice ({args.noise_pairs} pairs): {summary(self_a, self_b)}")


if __name__ == "__main__":
    main()
