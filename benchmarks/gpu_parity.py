"""Parity with the reference implementations on a CUDA device, fp32 and bf16 (issue 19, part 4).

Two uses, both run by benchmarks/gpu_check.sh:

1. A pytest plugin that runs the existing parity tests on the GPU without editing them: every tensor and
   module the tests create lands on ``XFORMER_TEST_DEVICE`` (``torch.set_default_device``), TF32 off so fp32
   tolerances stay meaningful:

       XFORMER_TEST_DEVICE=cuda PYTHONPATH=benchmarks python -m pytest -p gpu_parity tests/test_hf_gpt2.py ...

2. A script: the models of benchmarks/reference.py (GPT-2, BERT and timm's ViT on identical weights, greedy
   generation) built on the CPU, copied to the GPU, compared there with the reference:

       python benchmarks/gpu_parity.py [--device cuda] [--out PATH]

   fp32: eval-mode losses equal within 1e-4 (relative), and again after one AdamW step of each model (same lr,
   same batch: forward, backward and the update agree); greedy generation gives the same tokens.
   bf16 (autocast): each side's loss is compared with the fp32 CPU loss; xformer passes when its bf16 error
   is at most twice the reference's plus 1e-3 (bf16 is not expected to match fp32, only to be no worse).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- pytest plugin


def pytest_configure(config):  # noqa: ARG001 (pytest hook)
    device = os.environ.get("XFORMER_TEST_DEVICE")
    if device:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_default_device(device)


# ---------------------------------------------------------------- script


def one_step_loss(model, loss_of, batch, device: str, bf16: bool) -> tuple[float, float]:
    """(loss before, loss after one AdamW step), in train mode with dropout 0 (as built)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_of(model, batch)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        after = loss_of(model, batch)
    return float(loss.detach()), float(after)


def to(batch: dict, device: str) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def check_training(name: str, device: str) -> list[dict]:
    import reference

    ours, our_loss, ref, ref_loss, batch, what = reference.PAIRS[name](reference.SIZES[name][0], "cpu")
    cpu = one_step_loss(copy.deepcopy(ours), our_loss, batch, "cpu", False)
    rows = []
    for bf16 in (False, True):
        a = one_step_loss(copy.deepcopy(ours).to(device), our_loss, to(batch, device), device, bf16)
        b = one_step_loss(copy.deepcopy(ref).to(device), ref_loss, to(batch, device), device, bf16)
        if bf16:
            err_a = max(abs(x - y) for x, y in zip(a, cpu))
            err_b = max(abs(x - y) for x, y in zip(b, cpu))
            ok = err_a <= 2 * err_b + 1e-3
            detail = {"xformer_error_vs_fp32_cpu": err_a, "reference_error_vs_fp32_cpu": err_b}
        else:
            err = max(abs(x - y) for x, y in zip(a, b))
            ok = err <= 1e-4 * max(1.0, abs(a[0]))
            detail = {"max_loss_difference": err}
        rows.append({"model": name, "dtype": "bf16 autocast" if bf16 else "fp32", "ok": ok,
                     "xformer_loss_before_after": a, "reference_loss_before_after": b,
                     "cpu_fp32_loss_before_after": cpu, "reference": what, **detail})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def check_generate(device: str) -> list[dict]:
    import reference
    from xformer.generation import generate

    ours, _, hf, _, _, _ = reference.gpt2_pair(reference.SIZES["gpt2"][0], "cpu")
    ours, hf = ours.eval().to(device), hf.eval().to(device)
    prompt = torch.randint(0, reference.SIZES["gpt2"][0]["vocab_size"], (4, 16), device=device)
    rows = []
    for bf16 in (False, True):
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            a = generate(ours, prompt, max_new_tokens=48)
            b = hf.generate(prompt, max_new_tokens=48, min_new_tokens=48, do_sample=False, pad_token_id=0)
        same = bool(torch.equal(a, b))
        # bf16 rounding may flip a near-tie; fp32 must give the same tokens
        rows.append({"model": "greedy generate", "dtype": "bf16 autocast" if bf16 else "fp32",
                     "ok": same or bf16, "identical_tokens": same,
                     "first_difference": None if same else int((a != b).any(0).nonzero()[0])})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=HERE / "results/gpu_parity.json")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_parity: no CUDA device is present; nothing run")
        raise SystemExit(2)
    sys.path.insert(0, str(HERE)), sys.path.insert(0, str(HERE.parent))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    rows = []
    for name in ("gpt2", "bert", "vit"):
        rows += check_training(name, args.device)
    rows += check_generate(args.device)
    result = {"device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "all_ok": all(r["ok"] for r in rows), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"gpu_parity: {'all passed' if result['all_ok'] else 'FAILURES'}; wrote {args.out}")
    raise SystemExit(0 if result["all_ok"] else 1)


if __name__ == "__main__":
    main()
