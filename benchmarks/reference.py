"""xformer against the reference implementations, side by side in one process (issue 19).

    python benchmarks/reference.py [--threads 1] [--pairs 30] [--models gpt2,bert,vit,patchtst,generate]
                                   [--bf16] [--quick | --large] [--device cpu|cuda] [--compile] [--out PATH]
    python benchmarks/reference.py --nanogpt /tmp/nanogpt [--step-pairs 50] [--full-runs 1] [--xformer-first 1]
                                   [--xformer-overrides train.lr=1e-3 train.min_lr=1e-4] [--out-nanogpt PATH]

Each row times one training step (forward, backward, AdamW step; ``generate``: one greedy decoding call) of
xformer (A) and of the reference (B) on the same batch, alternating A B / B A for ``--pairs`` pairs after a
warm-up call each, so both see the same machine load. The figure is the median of the per-pair ratios
B / A (> 1: xformer is faster) with its quartiles; the "xformer vs xformer" row times two copies of the
xformer model the same way: the noise floor of that run.

The references and how their weights are made identical:
  gpt2      transformers ``GPT2LMHeadModel`` -> ``xformer.interop.load_gpt2`` (same weights; the losses are
            asserted equal before timing)
  bert      transformers ``BertForMaskedLM`` -> ``xformer.interop.hf_bert.load_bert`` (same weights, same loss)
  vit       timm ``VisionTransformer`` -> ``xformer.interop.from_timm_vit`` (same weights, same loss)
  patchtst  transformers ``PatchTSTForPrediction`` against ``tasks/patchtst_etth1_96.yaml``'s model with the
            same sizes (no converter exists for HF's PatchTST: same shapes and parameter count, not the same
            weights; HF has no residual attention and no end padding), with and without residual attention
  generate  greedy ``GPT2LMHeadModel.generate`` vs ``xformer.generation.generate``, identical tokens asserted

All dropout is 0 on both sides (the computations are then the same). The run also measures the machine's
matmul peak (fp32, and bf16 when ``--bf16``), best of repeated square matmuls on the same threads, and
reports each model's FLOP utilisation: FLOPs of one step (``torch.utils.flop_counter``, matmuls and
attention; forward + backward) / median step time / peak.

``--nanogpt PATH`` (a nanoGPT checkout) instead compares nanoGPT's char model with
``tasks/char_gpt_shakespeare.yaml``: ``--step-pairs`` alternating training steps of the two models in this
process (same sizes and initialisation scheme, not the same weights: nanoGPT draws its own), then
``--full-runs`` back-to-back pairs of full runs, nanoGPT's ``train.py`` with the CPU command of its README
and ``xformer train`` of the recipe, alternating which goes first, each in a fresh process with 1 thread
(OMP_NUM_THREADS); wall time from process start to exit, CPU time (user + system, less sensitive to a
shared machine's load) and the final validation loss of each.

Results: benchmarks/results/reference.json (reference_quick.json with ``--quick``, reference_large.json with
``--large``) and
benchmarks/results/nanogpt.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from timing import alternate, seconds  # noqa: E402 - benchmarks/timing.py, beside this script

SYNC = torch.cuda.synchronize if torch.cuda.is_available() else None  # GPU time is asynchronous

SIZES = {  # full, quick, large (base-size models with real vocabularies and lengths: for a GPU)
    "gpt2": ({"n_layer": 4, "n_embd": 128, "n_head": 4, "vocab_size": 512, "n_positions": 64, "batch": 8, "seq": 64},
             {"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 64, "n_positions": 16, "batch": 2, "seq": 16},
             {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024, "batch": 8,
              "seq": 1024}),
    "bert": ({"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 4, "intermediate_size": 512,
              "vocab_size": 1024, "max_position_embeddings": 64, "batch": 8, "seq": 64},
             {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
              "vocab_size": 64, "max_position_embeddings": 16, "batch": 2, "seq": 16},
             {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072,
              "vocab_size": 30522, "max_position_embeddings": 512, "batch": 16, "seq": 512}),
    "vit": ({"img_size": 32, "patch_size": 4, "embed_dim": 192, "depth": 4, "num_heads": 3, "num_classes": 10,
             "batch": 16},
            {"img_size": 16, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2, "num_classes": 10,
             "batch": 2},
            {"img_size": 224, "patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12, "num_classes": 1000,
             "batch": 64}),
    "patchtst": ({"channels": 7, "input_len": 336, "horizon": 96, "batch": 8},
                 {"channels": 2, "input_len": 64, "horizon": 8, "batch": 2},
                 {"channels": 21, "input_len": 336, "horizon": 96, "batch": 128}),
    "generate": ({"batch": 4, "prompt": 16, "new": 48}, {"batch": 1, "prompt": 4, "new": 4},
                 {"batch": 8, "prompt": 128, "new": 128}),
}


# ---------------------------------------------------------------- timing


def side_by_side(a, b, pairs: int) -> dict:
    """Medians of a and b over ``pairs`` alternating pairs (order flipped every pair), and of b / a."""
    ta, tb = alternate(a, b, pairs, SYNC)
    ratios = [y / x for x, y in zip(ta, tb)]
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive")[::2] if len(ratios) > 1 else [ratios[0]] * 2
    return {"a_ms": round(statistics.median(ta) * 1000, 3), "b_ms": round(statistics.median(tb) * 1000, 3),
            "ratio_b_over_a": round(statistics.median(ratios), 3),
            "ratio_quartiles": [round(q, 3) for q in quartiles], "pairs": pairs}


def matmul_peak(dtype: torch.dtype, device: str, quick: bool) -> float:
    """Best GFLOP/s of square matmuls (512 and 1024; 8192 on a GPU) in ``dtype`` on the current threads."""
    best = 0.0
    sizes = [8192] if device == "cuda" else ([256] if quick else [512, 1024])
    for n in sizes:
        x = torch.randn(n, n, device=device, dtype=dtype)
        y = torch.randn(n, n, device=device, dtype=dtype)
        x @ y
        for _ in range(3 if quick else 15):
            best = max(best, 2 * n ** 3 / seconds(lambda: x @ y, SYNC) / 1e9)
    return round(best, 2)


def step_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def autocast(device: str, bf16: bool):
    return torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def training_step(model, loss_of, batch, device: str, bf16: bool = False):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with autocast(device, bf16):
            loss = loss_of(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def loss_equal(a, b, tol: float = 1e-4) -> float:
    a, b = float(a), float(b)
    if abs(a - b) > tol * max(1.0, abs(a)):
        raise SystemExit(f"the two models disagree before timing: loss {a} vs {b}")
    return a


# ---------------------------------------------------------------- the pairs (xformer model, reference, batch, losses)


def gpt2_pair(size: dict, device: str):
    import transformers

    from xformer.interop.hf_gpt2 import load_gpt2

    cfg = {k: v for k, v in size.items() if k not in ("batch", "seq")}
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        **cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=cfg["vocab_size"] - 1,
        eos_token_id=cfg["vocab_size"] - 1, loss_type="ForCausalLM")).train()
    ours = load_gpt2(hf).train()
    ids = torch.randint(0, cfg["vocab_size"], (size["batch"], size["seq"]))
    shifted = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -100)], 1)  # HF shifts its labels itself
    batch = {"input_ids": ids.to(device), "labels": shifted.to(device), "hf_labels": ids.to(device)}
    return (ours.to(device), lambda m, b: m({"input_ids": b["input_ids"], "labels": b["labels"]})["loss"],
            hf.to(device), lambda m, b: m(input_ids=b["input_ids"], labels=b["hf_labels"]).loss, batch,
            f"transformers GPT2LMHeadModel ({hf.config._attn_implementation} attention), same weights")


def bert_pair(size: dict, device: str):
    import transformers

    from xformer.interop.hf_bert import load_bert

    cfg = {k: v for k, v in size.items() if k not in ("batch", "seq")}
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(transformers.BertConfig(
        **cfg, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).train()
    ours = load_bert(hf, head="masked_lm").train()
    ids = torch.randint(5, cfg["vocab_size"], (size["batch"], size["seq"]))
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids.to(device), "labels": labels.to(device)}
    return (ours.to(device), lambda m, b: m(b)["loss"],
            hf.to(device), lambda m, b: m(input_ids=b["input_ids"], labels=b["labels"]).loss, batch,
            f"transformers BertForMaskedLM ({hf.config._attn_implementation} attention), same weights")


def vit_pair(size: dict, device: str):
    from timm.models.vision_transformer import VisionTransformer

    from xformer.interop import from_timm_vit

    cfg = {k: v for k, v in size.items() if k != "batch"}
    torch.manual_seed(0)
    vit = VisionTransformer(**cfg).train()
    with torch.no_grad():  # timm zero-initialises the head: make every weight matter
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours = from_timm_vit(vit).train()
    images = torch.randn(size["batch"], 3, cfg["img_size"], cfg["img_size"])
    labels = torch.randint(0, cfg["num_classes"], (size["batch"],))
    batch = {"images": images.to(device), "labels": labels.to(device)}
    return (ours.to(device), lambda m, b: m(b)["loss"],
            vit.to(device), lambda m, b: F.cross_entropy(m(b["images"]), b["labels"]), batch,
            f"timm VisionTransformer (fused_attn={vit.blocks[0].attn.fused_attn}), same weights")


def patchtst_pair(size: dict, device: str, residual_attention: bool = True):
    import transformers

    from xformer.models import build_model
    from xformer.train.config import load_experiment

    config = load_experiment(ROOT / "tasks/patchtst_etth1_96.yaml").model
    config.tokenizer.args.update({"n_channels": size["channels"], "input_len": size["input_len"], "dropout": 0.0})
    config.head.args.update({"horizon": size["horizon"]})
    for key in ("dropout", "attn_dropout", "attn_proj_dropout"):
        setattr(config.core, key, 0.0)
    config.core.residual_attention = residual_attention
    torch.manual_seed(0)
    ours = build_model(config).train()
    c, tok = config.core, config.tokenizer.args
    hf = transformers.PatchTSTForPrediction(transformers.PatchTSTConfig(
        num_input_channels=size["channels"], context_length=size["input_len"], prediction_length=size["horizon"],
        patch_length=tok["patch_len"], patch_stride=tok["stride"], d_model=c.d_model, num_attention_heads=c.n_heads,
        num_hidden_layers=c.n_layers, ffn_dim=c.d_ff, norm_type="batchnorm", pre_norm=False,
        positional_encoding_type="random", scaling="std", pooling_type=None, activation_function="gelu", loss="mse",
        attention_dropout=0.0, positional_dropout=0.0, path_dropout=0.0, ff_dropout=0.0, head_dropout=0.0,
        dropout=0.0)).train()
    x = torch.randn(size["batch"], size["input_len"], size["channels"])
    y = torch.randn(size["batch"], size["horizon"], size["channels"])
    batch = {"inputs": x.to(device), "targets": y.to(device)}
    n_ours, n_hf = (sum(p.numel() for p in m.parameters()) for m in (ours, hf))
    return (ours.to(device), lambda m, b: m(b)["loss"],
            hf.to(device), lambda m, b: m(past_values=b["inputs"], future_values=b["targets"]).loss, batch,
            f"transformers PatchTSTForPrediction (flatten head, no pooling), same sizes, not the same weights "
            f"({n_ours:,} vs {n_hf:,} parameters; xformer residual_attention={residual_attention})")


PAIRS = {"gpt2": gpt2_pair, "bert": bert_pair, "vit": vit_pair, "patchtst": patchtst_pair}
NAMES = {"gpt2": "GPT-2 training step", "bert": "BERT masked-LM training step", "vit": "ViT training step",
         "patchtst": "PatchTST/42 training step"}


def clone(model):
    import copy

    return copy.deepcopy(model)


def bench_training(name: str, size: dict, args, peaks: dict, bf16: bool = False, **pair_kw) -> list[dict]:
    ours, our_loss, ref, ref_loss, batch, what = PAIRS[name](size, args.device, **pair_kw)
    exact = "not the same weights" not in what
    with torch.no_grad():
        ours.eval(), ref.eval()
        a, b = our_loss(ours, batch), ref_loss(ref, batch)
        if exact and not bf16:
            loss_equal(a, b)
        ours.train(), ref.train()
    twin = clone(ours)
    if args.compile:
        ours, ref, twin = torch.compile(ours), torch.compile(ref), torch.compile(twin)
    step_a = training_step(ours, our_loss, batch, args.device, bf16)
    flops = step_flops(step_a)
    rows = []
    label = NAMES[name] + (", bf16 autocast" if bf16 else "") + \
        (", no residual attention" if pair_kw.get("residual_attention") is False else "")
    for pair, other, other_loss in (("xformer vs reference", ref, ref_loss), ("xformer vs xformer (noise floor)",
                                                                                 twin, our_loss)):
        row = side_by_side(step_a, training_step(other, other_loss, batch, args.device, bf16), args.pairs)
        peak = peaks["bf16" if bf16 else "fp32"]
        row.update({"model": label, "pair": pair, "reference": what, "flops_per_step": flops,
                    "xformer_utilisation": round(flops / (row["a_ms"] / 1000) / (peak * 1e9), 3) if peak else None})
        rows.append(row)
        report(row)
    return rows


def bench_generate(size: dict, args, peaks: dict) -> list[dict]:
    from xformer.generation import generate

    gsize = SIZES["gpt2"][args.which]
    ours, _, hf, _, _, _ = gpt2_pair(gsize, args.device)
    ours.eval(), hf.eval()
    for p in [*ours.parameters(), *hf.parameters()]:  # inference only (and torch's FLOP counter needs it)
        p.requires_grad_(False)
    hf.generation_config.pad_token_id = 0
    prompt = torch.randint(0, gsize["vocab_size"], (size["batch"], size["prompt"]), device=args.device)
    new = size["new"]

    def a():
        return generate(ours, prompt, max_new_tokens=new)

    def b():
        with torch.no_grad():
            return hf.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)

    identical = bool(torch.equal(a(), b()))
    if not identical and args.device == "cpu":
        raise SystemExit("greedy generation: xformer and transformers produced different tokens")
    twin = clone(ours)
    flops = step_flops(a)
    rows = []
    for pair, other in (("xformer vs reference", b),
                        ("xformer vs xformer (noise floor)", lambda: generate(twin, prompt, max_new_tokens=new))):
        row = side_by_side(a, other, args.pairs)
        row.update({"model": f"greedy generate ({size['batch']} prompts x {size['prompt']} tokens + {new} new)",
                    "pair": pair, "reference": "transformers GPT2LMHeadModel.generate (KV cache), same weights; "
                    "identical tokens asserted on the CPU", "identical_tokens": identical, "flops_per_step": flops,
                    "xformer_utilisation": round(flops / (row["a_ms"] / 1000) / (peaks["fp32"] * 1e9), 4)})
        rows.append(row)
        report(row)
    return rows


def report(row: dict) -> None:
    q = row["ratio_quartiles"]
    util = f"  util {row['xformer_utilisation']}" if row.get("xformer_utilisation") is not None else ""
    print(f"{row['model']:48s} {row['pair']:34s} {row['a_ms']:9.2f} ms {row['b_ms']:9.2f} ms  "
          f"B/A {row['ratio_b_over_a']:.3f} ({q[0]:.3f}-{q[1]:.3f}){util}", flush=True)


def machine(threads: int, device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text(encoding="utf-8").splitlines()
                  if line.startswith("model name")), platform.processor()) if cpuinfo.exists() else ""
    return (f"{platform.machine()} {model}, {os.cpu_count()} cores, {threads} thread(s), torch {torch.__version__}, "
            f"load average {os.getloadavg()[0]:.1f} at start")


def run_reference(args) -> dict:
    which = args.which
    peaks = {"fp32": matmul_peak(torch.float32, args.device, args.quick)}
    peaks["bf16"] = matmul_peak(torch.bfloat16, args.device, args.quick) if args.bf16 else None
    print(f"matmul peak: fp32 {peaks['fp32']} GFLOP/s, bf16 {peaks['bf16']} GFLOP/s", flush=True)
    result = {"machine": machine(args.threads, args.device), "device": args.device, "compile": args.compile,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python " + " ".join(sys.argv), "sizes": {k: v[which] for k, v in SIZES.items()},
              "matmul_peak_gflops": peaks, "rows": []}
    for name in args.models:
        size = SIZES[name][which]
        if name == "generate":
            result["rows"] += bench_generate(size, args, peaks)
            continue
        result["rows"] += bench_training(name, size, args, peaks)
        if name == "patchtst":
            result["rows"] += bench_training(name, size, args, peaks, residual_attention=False)
        if args.bf16 and (name in ("gpt2", "vit") or args.device == "cuda"):
            result["rows"] += bench_training(name, size, args, peaks, bf16=True)
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    result["matmul_peak_gflops_at_end"] = {  # the load moves: the peak again, after the rows
        "fp32": matmul_peak(torch.float32, args.device, args.quick),
        "bf16": matmul_peak(torch.bfloat16, args.device, args.quick) if args.bf16 else None}
    return result


# ---------------------------------------------------------------- nanoGPT


NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]


def nanogpt_steps(checkout: Path, pairs: int) -> list[dict]:
    """One training step of each char model (forward, backward, clip 1.0, AdamW), alternating."""
    sys.path.insert(0, str(checkout))
    from model import GPT, GPTConfig  # nanoGPT's model.py

    from xformer.models import build_model
    from xformer.train.config import load_experiment

    torch.manual_seed(1337)
    theirs = GPT(GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
                           bias=False)).train()
    their_opt = theirs.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
    config = load_experiment(ROOT / "tasks/char_gpt_shakespeare.yaml").model
    config.tokenizer.args.update({"vocab_size": 65, "max_positions": 64})
    ours = build_model(config).train()
    decay = [p for p in ours.parameters() if p.dim() >= 2]
    no_decay = [p for p in ours.parameters() if p.dim() < 2]
    our_opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.99))
    x, y = torch.randint(0, 65, (12, 64)), torch.randint(0, 65, (12, 64))

    def make(model, opt, loss_of):
        def step():
            loss = loss_of(model)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    a = make(ours, our_opt, lambda m: m({"input_ids": x, "labels": y})["loss"])
    b = make(theirs, their_opt, lambda m: m(x, y)[1])
    rows = []
    twin = clone(ours)
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-3, betas=(0.9, 0.99))
    for pair, other in (("xformer vs nanoGPT", b),
                        ("xformer vs xformer (noise floor)",
                         make(twin, twin_opt, lambda m: m({"input_ids": x, "labels": y})["loss"]))):
        row = side_by_side(a, other, pairs)
        row.update({"model": "char GPT training step (12 x 64, 4 layers, d 128)", "pair": pair,
                    "parameters": [sum(p.numel() for p in ours.parameters()),
                                   sum(p.numel() for p in theirs.parameters())]})
        rows.append(row)
        report(row)
    return rows


def nanogpt_prepare(checkout: Path, data: Path) -> None:
    prep = checkout / "data/shakespeare_char"
    shutil.copyfile(data, prep / "input.txt")  # prepare.py downloads only when input.txt is missing
    stub = Path(tempfile.mkdtemp())  # prepare.py imports requests (only to download); it may not be installed
    (stub / "requests.py").write_text("", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(stub)}
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, check=True, capture_output=True, env=env)


def timed(cmd, cwd, env) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; its wall time and the CPU time (user + system) it and its children used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return proc, wall, cpu


def run_nanogpt(checkout: Path) -> dict:
    cmd = [sys.executable, "train.py", "config/train_shakespeare_char.py", *NANOGPT_CPU, "--out_dir=out-bench"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc, wall, cpu = timed(cmd, checkout, env)
    if proc.returncode:
        raise SystemExit(f"nanoGPT failed:\n{proc.stderr[-2000:]}")
    step, _, val = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", proc.stdout)[-1]
    return {"tool": "nanoGPT", "val_loss": float(val), "val_loss_estimator": "20 random batches of 12 x 64",
            "step": int(step), "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "command": " ".join(cmd[1:])}


def run_xformer_train(data: Path, out: Path, overrides: list[str]) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "xformer.cli", "train", str(ROOT / "tasks/char_gpt_shakespeare.yaml"),
           f"data.args.files={data}", *overrides, "--out", str(out), "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc, wall, cpu = timed(cmd, ROOT, env)
    if proc.returncode:
        raise SystemExit(f"xformer train failed:\n{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"tool": "xformer", "val_loss": round(metrics["val_loss"], 4),
            "val_loss_estimator": "every validation character", "train_seconds": metrics.get("train_seconds"),
            "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "command": "xformer " + " ".join(cmd[3:]),
            "overrides": overrides}


def run_nanogpt_mode(args) -> dict:
    checkout = args.nanogpt.resolve()
    torch.set_num_threads(1)
    result = {"machine": machine(1, "cpu"), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python " + " ".join(sys.argv), "nanogpt_commit": args.nanogpt_commit,
              "steps": nanogpt_steps(checkout, args.step_pairs) if args.step_pairs else [], "full_runs": []}
    out = Path(tempfile.mkdtemp(prefix="xformer-nanogpt-"))
    if args.full_runs:
        nanogpt_prepare(checkout, args.data)
    for i in range(args.full_runs):
        order = ("nanogpt", "xformer") if (i + args.xformer_first) % 2 == 0 else ("xformer", "nanogpt")
        for tool in order:
            run = run_nanogpt(checkout) if tool == "nanogpt" else run_xformer_train(
                args.data, out / f"run{i}", args.xformer_overrides)
            run["repeat"] = i
            result["full_runs"].append(run)
            print(json.dumps(run), flush=True)
            write(args.out_nanogpt, result)
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return result


def write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--models", default="gpt2,bert,vit,patchtst,generate")
    parser.add_argument("--bf16", action="store_true", help="also the bf16 matmul peak and bf16-autocast rows")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="tiny models, 2 pairs: a smoke test")
    sizes.add_argument("--large", action="store_true", help="base-size models (GPT-2 124M at 1,024 tokens, BERT-base "
                       "at 512, ViT-B/16 at 224): for a GPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (both sides)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout: run the nanoGPT comparison instead")
    parser.add_argument("--nanogpt-commit", default=None, help="recorded in the results")
    parser.add_argument("--step-pairs", type=int, default=50)
    parser.add_argument("--full-runs", type=int, default=1)
    parser.add_argument("--xformer-first", type=int, default=0, choices=(0, 1), help="1: xformer's run first")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/tinyshakespeare.txt")
    parser.add_argument("--xformer-overrides", nargs="*", default=[])
    parser.add_argument("--out-nanogpt", type=Path, default=ROOT / "benchmarks/results/nanogpt.json")
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.which = 1 if args.quick else 2 if args.large else 0
    unknown = set(args.models) - set(SIZES)
    if unknown:
        raise SystemExit(f"unknown model(s) {sorted(unknown)}; choose from {', '.join(SIZES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device is present; nothing to run on --device cuda")
        raise SystemExit(2)
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 (matmuls already default to it)
    if args.nanogpt:
        write(args.out_nanogpt, run_nanogpt_mode(args))
        return
    if args.quick:
        args.pairs = min(args.pairs, 2)
    result = run_reference(args)
    name = "reference_quick.json" if args.quick else "reference_large.json" if args.large else "reference.json"
    out = args.out or ROOT / "benchmarks/results" / name
    write(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
