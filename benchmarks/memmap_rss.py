"""Peak memory of training on memory-mapped token files (`token_file`) against corpus size.

    python benchmarks/memmap_rss.py [--sizes-mb 10 100 1000] [--steps 100] [--text-lm-mb 10] [--dir /tmp/...]

For each size S it writes a uint16 corpus of S MB (tinyshakespeare's train ids, prepared as
data/shakespeare_char does it, repeated until S MB; its real val.bin as validation) into --dir,
trains nanoGPT's CPU char model (tasks/char_gpt_shakespeare.yaml: 4 layers, 128 wide, block 64,
batch 12) for --steps steps in a fresh process (`xformer train`, 1 thread, 10 validation batches) and
reads that process's peak RSS (getrusage ru_maxrss). With --text-lm-mb the same text, repeated to that
many characters, is also trained through `text_lm`, which holds its whole id stream in memory: the
contrast. Every corpus is deleted after its run (unless --keep). Prints a Markdown table; --json
writes the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xformer.data.corpus import read_text_files  # noqa: E402
from xformer.data.token_file import TokenWriter, write_meta, write_text_corpus  # noqa: E402
from xformer.data.vocab import load_vocab  # noqa: E402

SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
CHILD = """
import resource, sys, time
from xformer.cli import main
start = time.perf_counter()
status = main(["train", sys.argv[1], "--out", sys.argv[2]])
print("RESULT", status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - start)
"""


def tiled_corpus(base: Path, folder: Path, megabytes: int) -> int:
    """folder/train.bin: base's train ids repeated to ``megabytes`` MB; val.bin, tokenizer as base's."""
    folder.mkdir(parents=True)
    ids = np.fromfile(base / "train.bin", dtype=np.uint16)
    n = megabytes * 10 ** 6 // 2
    with TokenWriter(folder / "train.bin", "uint16") as w:
        while w.count < n:
            w.write(ids[: n - w.count])
    shutil.copyfile(base / "val.bin", folder / "val.bin")
    meta = json.loads((base / "meta.json").read_text(encoding="utf-8"))
    write_meta(folder, load_vocab(base / "tokenizer"), "uint16", {"train": n, "val": meta["tokens"]["val"]},
               source=f"{SHAKESPEARE.name} train ids repeated to {megabytes} MB")
    return n


def run(recipe: dict, workdir: Path, name: str) -> dict:
    """Train ``recipe`` in a fresh process; its peak RSS (MiB) and wall time."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(workdir / f"run_{name}")], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
    if out.returncode or not line or line[-1].split()[1] != "0":
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    _, _, rss_kib, seconds = line[-1].split()
    metrics = json.loads((workdir / f"run_{name}" / "metrics.json").read_text(encoding="utf-8"))
    shutil.rmtree(workdir / f"run_{name}")
    return {"peak_rss_mib": round(int(rss_kib) / 1024, 1), "seconds": round(float(seconds), 1),
            "val_loss": round(metrics["val_loss"], 4)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--text-lm-mb", type=int, nargs="*", default=[10])
    parser.add_argument("--dir", type=Path, default=None, help="where the corpora go (default: a new folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="memmap_rss_"))
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free / 1e6
    if max(args.sizes_mb) * 1.1 > free:
        raise SystemExit(f"{workdir} has {free:.0f} MB free, too little for a {max(args.sizes_mb)} MB corpus")
    text = read_text_files(SHAKESPEARE)
    base = workdir / "base"
    write_text_corpus(base, text, "char")
    task = yaml.safe_load((ROOT / "tasks" / "char_gpt_shakespeare.yaml").read_text(encoding="utf-8"))
    task["train"].update(steps=args.steps, eval_every=10 ** 6, eval_batches=10, log_every=50)
    rows = []
    try:
        for mb in args.sizes_mb:
            folder = workdir / f"corpus_{mb}mb"
            n = tiled_corpus(base, folder, mb)
            task["data"] = {"name": "token_file", "args": {"path": str(folder), "block_size": 64}}
            rows.append({"data": "token_file", "corpus_mb": mb, "train_tokens": n, **run(task, workdir, f"tf{mb}")})
            print(rows[-1], flush=True)
            if not args.keep:
                shutil.rmtree(folder)
        for mb in args.text_lm_mb:
            path = workdir / f"text_{mb}mb.txt"
            reps = -(-mb * 10 ** 6 // len(text))
            path.write_text((text * reps)[: mb * 10 ** 6], encoding="utf-8")
            task["data"] = {"name": "text_lm", "args": {"files": str(path), "tokenizer": "char", "block_size": 64}}
            rows.append({"data": "text_lm", "corpus_mb": mb, "train_tokens": int(mb * 10 ** 6 * 0.9),
                         **run(task, workdir, f"tl{mb}")})
            print(rows[-1], flush=True)
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n| data | corpus | train tokens | peak RSS | wall time | val loss (10 batches) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['data']}` | {r['corpus_mb']} MB | {r['train_tokens']:,} | {r['peak_rss_mib']} MiB | "
              f"{r['seconds']} s | {r['val_loss']} |")
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "steps": args.steps, "rows": rows},
                                        indent=1), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
