"""Speed work of issue 19: each change (or idea) timed against the code without it, side by side in one process.

    python benchmarks/speed_work.py [residual] [evaluate] [step] [bf16] [adamw] [--threads 1] [--repeats N]

residual  PatchTST/42 training step (tasks/patchtst_etth1_96.yaml, ETTh1 shapes, batch 128 x 7 channels as the
          recipe, 3 layers of residual attention): ``attention_math`` before (Q K^T, then / sqrt(d_k), then
          + previous scores: three passes over the scores) against now (one ``torch.baddbmm``); and one such
          layer alone (forward and backward).
evaluate  tried, not kept: full validation of the char GPT (tasks/char_gpt_shakespeare.yaml, every one of the
          111,540 validation characters) under ``torch.inference_mode`` against ``no_grad`` (same numbers), and
          with evaluation batches of 256 against the recipe's 64 (the loss moves in its 7th digit).
step      tried, not kept: ``Trainer._step`` as it is (``train()`` on every module each step, one ``mul_`` per
          gradient, parameters listed twice a step) against a leaner copy (``step_tried``), on the transformers
          of ``xformer compare``'s defaults (d_model 64, 2 layers, 4 heads, d_ff 128, batch 32): text (char GPT),
          images (ViT, digits), series (PatchTST, ETTh1).
bf16      the char GPT's training step and full evaluation with train.precision fp32 against bf16 (autocast).
adamw     not a change: ``optimizer.step()`` of torch's AdamW as xformer builds it against ``fused=True``.

Every row: the two variants alternate (A B, then B A, ...) after a warm-up call each, so both see the same load
on the shared machine; the medians of each and the median of the per-pair ratios A / B (> 1: B is faster),
with its quartiles. A "now vs now" row times two copies of the current code the same way: the noise floor.
Results go to benchmarks/results/speed_work.json (the sections run are replaced, the others kept).
Data: ../shared/data/tinyshakespeare.txt and ../shared/data/ETTh1.csv (as the recipes).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from timing import alternate  # noqa: E402 - benchmarks/timing.py, beside this script

from xformer.config import from_dict  # noqa: E402
from xformer.core import residual_attention  # noqa: E402
from xformer.core.layers import dropout  # noqa: E402
from xformer.core.masks import causal_mask  # noqa: E402
from xformer.train.config import ExperimentConfig, load_experiment  # noqa: E402
from xformer.train.distributed import World, all_sum  # noqa: E402
from xformer.train.run import build_resolved  # noqa: E402
from xformer.train.trainer import Trainer  # noqa: E402

SHAKESPEARE, ETTH1 = ROOT.parent / "shared/data/tinyshakespeare.txt", ROOT.parent / "shared/data/ETTh1.csv"


# ---- the code before each change (copied from the commit before it) ----------------------------------------
def attention_math_before(q, k, v, mask=None, causal=False, dropout_p=0.0, prev_scores=None):
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if prev_scores is not None:
        scores = scores + prev_scores
    masked = scores
    if causal:
        mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
    if mask is not None:
        masked = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = masked.softmax(dim=-1)
    return dropout(weights, dropout_p) @ v, weights, scores


def step_tried(self: Trainer, batches) -> tuple[float, float]:
    """Tried, not kept (5052225, reverted): Trainer._step with ``train()`` only after an evaluation, the gradient
    scale as one ``torch._foreach_mul_`` and the parameter list built once (``self.tried_params``)."""
    if not self.engine.training:
        self.engine.train()
    totals = self._forward_backward(batches, None)
    total_loss, total_weight = all_sum(totals, self.world).tolist()
    loss = total_loss / total_weight
    if grads := [p.grad for p in self.tried_params if p.grad is not None]:
        torch._foreach_mul_(grads, self.world.size / total_weight)
    if self.cfg.clip:
        torch.nn.utils.clip_grad_norm_(self.tried_params, self.cfg.clip)
    self.optimizer.step()
    self.scheduler.step()
    self.optimizer.zero_grad(set_to_none=True)
    return loss, total_weight


# ---- timing ---------------------------------------------------------------------------------------------------
def side_by_side(a, b, repeats: int) -> dict:
    """Medians of a and b over ``repeats`` alternating pairs (order flipped every pair), and of a / b."""
    ta, tb = alternate(a, b, repeats)
    ratios = [x / y for x, y in zip(ta, tb)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"a_ms": round(statistics.median(ta) * 1000, 2), "b_ms": round(statistics.median(tb) * 1000, 2),
            "a_over_b": round(statistics.median(ratios), 3), "quartiles": [round(quartiles[0], 3),
                                                                           round(quartiles[2], 3)]}


def report(rows: list, what: str, pair: str, row: dict) -> None:
    rows.append({"what": what, "pair": pair, **row})
    print(f"{what:48s} {pair:28s} {row['a_ms']:9.1f} ms {row['b_ms']:9.1f} ms  A/B {row['a_over_b']:.3f} "
          f"(quartiles {row['quartiles'][0]:.3f}-{row['quartiles'][1]:.3f})", flush=True)


def trainer(experiment: ExperimentConfig, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    _, model, data = build_resolved(experiment)
    return Trainer(model, data, experiment.train, None, World())


# ---- sections -------------------------------------------------------------------------------------------------
def residual(repeats: int, rows: list) -> None:
    recipe = load_experiment(ROOT / "tasks/patchtst_etth1_96.yaml", [f"data.args.path={ETTH1}"]).model
    recipe.tokenizer.args.update({"n_channels": 7, "input_len": 336})
    recipe.head.args.update({"horizon": 96})
    from xformer.models import build_model
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_model(recipe).train())
    torch.manual_seed(1)
    batch = {"inputs": torch.randn(128, 336, 7), "targets": torch.randn(128, 96, 7)}
    now = residual_attention.attention_math

    def step(model, math_fn):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def run():
            residual_attention.attention_math = math_fn
            try:
                model(batch)["loss"].backward()
            finally:
                residual_attention.attention_math = now
            optimizer.step()
            optimizer.zero_grad()
        return run

    layer = models[1].core.blocks[1].attn  # a layer that receives scores: the changed path alone

    def attention(math_fn):
        x, prev = torch.randn(896, 42, 16), torch.randn(896, 4, 42, 42, requires_grad=True)

        def run():
            residual_attention.attention_math = math_fn
            try:
                out, scores = layer(x, None, prev)
                (out.sum() + scores.sum()).backward()
            finally:
                residual_attention.attention_math = now
        return run

    what = "residual attention layer, fwd+bwd (896 x 42 x 16)"
    report(rows, what, "before vs now", side_by_side(attention(attention_math_before), attention(now), repeats))
    report(rows, what, "now vs now (noise floor)", side_by_side(attention(now), attention(now), repeats))
    what = "PatchTST/42 step (batch 128 x 7, residual attn)"
    report(rows, what, "before vs now", side_by_side(step(models[0], attention_math_before),
                                                      step(models[1], now), repeats))
    report(rows, what, "now vs now (noise floor)", side_by_side(step(models[0], now), step(models[1], now),
                                                                 repeats))


def char_gpt(*overrides: str) -> ExperimentConfig:
    return load_experiment(ROOT / "tasks/char_gpt_shakespeare.yaml", [f"data.args.files={SHAKESPEARE}", *overrides])


def evaluate(repeats: int, rows: list) -> None:
    """Tried, not kept: the evaluation under torch.inference_mode instead of no_grad, and a larger batch."""
    a, b = trainer(char_gpt()), trainer(char_gpt())
    b.model.load_state_dict(a.model.state_dict())

    def inference(t: Trainer) -> dict:
        with torch.inference_mode():
            return t.evaluate("val")

    now = a.evaluate("val")
    assert inference(b) == now  # the same numbers, bit for bit
    what = "char GPT evaluation, 111,540 characters"
    report(rows, what, "no_grad vs inference_mode", side_by_side(lambda: a.evaluate("val"), lambda: inference(b),
                                                                  repeats))
    report(rows, what, "no_grad vs no_grad (noise floor)", side_by_side(lambda: a.evaluate("val"),
                                                                         lambda: b.evaluate("val"), repeats))
    b.cfg.eval_batch_size = 256
    larger = b.evaluate("val")
    print(f"validation loss, eval batch 64: {now['loss']!r}, 256: {larger['loss']!r}")
    rows.append({"what": what, "loss_eval_batch_64": now["loss"], "loss_eval_batch_256": larger["loss"]})
    report(rows, what, "eval batch 64 vs 256", side_by_side(lambda: a.evaluate("val"), lambda: b.evaluate("val"),
                                                             repeats))


def compare_defaults() -> dict[str, ExperimentConfig]:
    from xformer.compare.experiments import CompareConfig, entries
    cfg = CompareConfig(domains=["text", "images", "series"], text_data=[str(SHAKESPEARE)], series_data=str(ETTH1),
                        device="cpu")
    return {e.domain: from_dict(ExperimentConfig, e.experiment) for e in entries(cfg) if e.kind == "transformer"}


def step(repeats: int, rows: list) -> None:
    for domain, experiment in compare_defaults().items():
        a, b = trainer(experiment), trainer(experiment)
        ba, bb = a._batches(), b._batches()
        b.tried_params = list(b.model.parameters())
        what = f"compare default step, {domain} (batch 32)"
        report(rows, what, "now vs tried", side_by_side(lambda: a._step(ba), lambda: step_tried(b, bb), repeats))
        b.model(next(bb))["loss"].backward()  # gradients in place: the bookkeeping alone, no compute

        def bookkeeping_now():
            b.engine.train()
            for p in b.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(1.0)
            torch.nn.utils.clip_grad_norm_(b.model.parameters(), 1e9)

        def bookkeeping_tried():
            if not b.engine.training:
                b.engine.train()
            torch._foreach_mul_([p.grad for p in b.tried_params if p.grad is not None], 1.0)
            torch.nn.utils.clip_grad_norm_(b.tried_params, 1e9)

        report(rows, f"train() + gradient scale + clip alone, {domain}", "now vs tried",
               side_by_side(bookkeeping_now, bookkeeping_tried, 10 * repeats))
        report(rows, what, "now vs now (noise floor)", side_by_side(lambda: a._step(ba), lambda: b._step(bb),
                                                                     repeats))


def bf16(repeats: int, rows: list) -> None:
    a, b = trainer(char_gpt()), trainer(char_gpt("train.precision=bf16"))
    b.model.load_state_dict(a.model.state_dict())
    ba, bb = a._batches(), b._batches()
    what = "char GPT training step (batch 12 x 64)"
    report(rows, what, "fp32 vs bf16", side_by_side(lambda: a._step(ba), lambda: b._step(bb), repeats))
    losses = {"fp32": a.evaluate("val")["loss"], "bf16": b.evaluate("val")["loss"]}  # same start, same batches
    print(f"validation loss after the same {repeats + 1} steps: {losses}")
    rows.append({"what": f"validation loss after {repeats + 1} steps", **losses})
    c, d = trainer(char_gpt()), trainer(char_gpt())
    bc, bd = c._batches(), d._batches()
    report(rows, what, "fp32 vs fp32 (noise floor)", side_by_side(lambda: c._step(bc), lambda: d._step(bd), repeats))
    what = "char GPT evaluation, 111,540 characters"
    report(rows, what, "fp32 vs bf16", side_by_side(lambda: a.evaluate("val"), lambda: b.evaluate("val"),
                                                     max(3, repeats // 10)))


def adamw(repeats: int, rows: list) -> None:
    """Not a change made here (xformer/train/optim.py builds the optimizer): torch's AdamW as built now
    (for-loop implementation on CPU) against ``fused=True``, ``optimizer.step()`` alone."""
    for domain, experiment in compare_defaults().items():
        a = trainer(experiment)
        batch = next(a._batches())
        a.model(batch)["loss"].backward()
        params = [p for p in a.model.parameters() if p.grad is not None]
        default = torch.optim.AdamW(params, lr=1e-4)
        fused = torch.optim.AdamW(params, lr=1e-4, fused=True)
        report(rows, f"AdamW step, compare default {domain}", "default vs fused=True",
               side_by_side(default.step, fused.step, repeats))
        report(rows, f"AdamW step, compare default {domain}", "default vs default (noise floor)",
               side_by_side(default.step, torch.optim.AdamW(params, lr=1e-4).step, repeats))


SECTIONS = {"residual": residual, "evaluate": evaluate, "step": step, "bf16": bf16, "adamw": adamw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30, help="pairs per row (evaluation: a fifth of it)")
    args = parser.parse_args()
    if set(args.sections) - set(SECTIONS):
        parser.error(f"unknown section(s) {sorted(set(args.sections) - set(SECTIONS))}; choose from {list(SECTIONS)}")
    torch.set_num_threads(args.threads)
    out = ROOT / "benchmarks/results/speed_work.json"
    result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    for name in args.sections or SECTIONS:
        rows: list = []
        repeats = max(3, args.repeats // 5) if name == "evaluate" else args.repeats
        SECTIONS[name](repeats, rows)
        result[name] = {"machine": f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
                        "date": time.strftime("%Y-%m-%d %H:%M"), "repeats": repeats, "rows": rows}
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
