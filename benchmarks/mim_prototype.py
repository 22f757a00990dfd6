"""A prototype of masked image modelling on the training images themselves (SimMIM, Xie et al. 2022, "SimMIM: a
Simple Framework for Masked Image Modeling"; on small data sets: Gani et al. 2022, "How to Train Vision Transformer
on Small-scale Datasets?", who pre-train a ViT self-supervised on the same few images it is then fine-tuned on)
for validation screens only, not a part of the project: it pre-trains a recipe's tokenizer and core to
reconstruct masked cells of the fold's training images, writes their weights as a checkpoint folder, and the
recipe then fine-tunes from it with ``init_from``.

For a grid of g_r x g_c tokens over an H x W image, each token covers a cell of (H / g_r) x (W / g_c) pixels. A
fraction r of the cells is drawn per image (mask M, 1 = masked, upsampled to pixels as m). The masked pixels are
zeroed in the input (a convolutional tokenizer would otherwise read them through its receptive field), the masked
cells' tokens are replaced by a learned mask token of their cell, e_[M]i (one per cell: the recipe may have no
positions, and identical mask tokens would then be indistinguishable), a linear decoder maps each output token
to its cell's pixels, and the loss is SimMIM's L1 over the masked pixels:

    t_i = (1 - M_i) tok(x * (1 - m))_i + M_i e_[M]i
    x_hat = unpatchify(W core(t) + b)
    L = sum |x_hat - x| m / (C sum m)

The augmentation, optimiser and schedule are the recipe's (``train.*``: AdamW, warmup and cosine) with
``--steps`` steps; the head is not pre-trained (the fine-tuned run starts it fresh). Only the training split is
read, so the fold's validation images stay unseen.

    OMP_NUM_THREADS=1 python benchmarks/mim_prototype.py tasks/cct_digits.yaml data.args.val_seed=F train.seed=F \
        model.tokenizer.args.positions=learned --steps 1600 --mask-ratio 0.5 --out PRE_F
    OMP_NUM_THREADS=1 xformer train tasks/cct_digits.yaml data.args.val_seed=F train.seed=F init_from=PRE_F \
        model.tokenizer.args.positions=learned \
        --threads 1 --out RUN_F --quiet
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader

from xformer.batch import IMAGES
from xformer.errors import ConfigError, UserError
from xformer.train.config import load_experiment
from xformer.train.optim import build_optimizer, build_scheduler
from xformer.train.run import build_resolved


def fail(message: str) -> None:
    print(f"mim_prototype: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class CellDecoder(nn.Module):
    """(B, N, d) tokens of a g_r x g_c grid -> (B, C, H, W): each token's linear map to its cell's pixels."""

    def __init__(self, dim: int, channels: int, cell: tuple[int, int]):
        super().__init__()
        self.channels, self.cell = channels, cell
        self.proj = nn.Linear(dim, channels * cell[0] * cell[1])

    def forward(self, cells: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        b = cells.shape[0]
        (gr, gc), (ch, cw), c = grid, self.cell, self.channels
        x = self.proj(cells).reshape(b, gr, gc, c, ch, cw)
        return x.permute(0, 3, 1, 4, 2, 5).reshape(b, c, gr * ch, gc * cw)


def random_cell_mask(b: int, grid: tuple[int, int], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(B, g_r g_c) bool, exactly round(ratio * g_r g_c) cells masked per image (at least one)."""
    n = grid[0] * grid[1]
    k = max(1, round(ratio * n))
    order = torch.rand(b, n, generator=generator).argsort(dim=1)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--mask-ratio", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=None, help="default: the recipe's train.lr")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        fail(f"{out} already exists; give a new folder (an earlier pre-training is never overwritten)")
    torch.set_num_threads(1)
    try:
        config = load_experiment(args.recipe, args.overrides)
        train = config.train if args.lr is None else dataclasses.replace(config.train, lr=args.lr)
        _, model, data = build_resolved(config)
    except (ConfigError, UserError, OSError) as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    torch.manual_seed(train.seed)
    generator = torch.Generator().manual_seed(train.seed)
    tokenizer, core = model.tokenizer, model.core
    state = tokenizer.token_state
    grid, prefix = tuple(state.grid), state.prefix_tokens
    c, h, w = data.train[0][IMAGES].shape
    if h % grid[0] or w % grid[1]:
        fail(f"the tokenizer's {grid[0]}x{grid[1]} grid does not tile {h}x{w} images into equal cells; choose "
             "model.tokenizer.args whose grid divides the image size")
    cell = (h // grid[0], w // grid[1])
    dim = config.model.core.d_model
    # one learned mask token per cell, e_[M]i. Without positions (the digits recipe has none) every masked cell would
    # get the same input, and attention, blind to order, the same output: the model could not tell them apart
    mask_token = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
    nn.init.trunc_normal_(mask_token, std=0.02)
    decoder = CellDecoder(dim, c, cell)
    pretrain = nn.ModuleDict({"tokenizer": tokenizer, "core": core, "decoder": decoder})
    pretrain.mask_token = mask_token
    optimizer = build_optimizer(pretrain, train)
    scheduler = build_scheduler(optimizer, train, args.steps, max(len(data.train) // train.batch_size, 1))
    loader = DataLoader(data.train, batch_size=train.batch_size, shuffle=True, drop_last=True,
                        collate_fn=data.collate, generator=generator)
    pretrain.train()
    step, losses, start = 0, [], time.perf_counter()
    while step < args.steps:
        for batch in loader:
            images = batch[IMAGES].float()
            cells = random_cell_mask(images.shape[0], grid, args.mask_ratio, generator)
            pixels = cells.reshape(-1, 1, *grid).float()
            pixels = pixels.repeat_interleave(cell[0], 2).repeat_interleave(cell[1], 3)  # (B, 1, H, W)
            tokens = tokenizer({IMAGES: images * (1 - pixels)})
            x = tokens.x
            weight = cells.unsqueeze(-1).to(x.dtype)
            grid_x = x[:, prefix:] * (1 - weight) + mask_token.to(x.dtype) * weight
            tokens.x = torch.cat([x[:, :prefix], grid_x], dim=1)
            hidden = model.run_core(tokens)
            rebuilt = decoder(hidden[:, prefix:], grid)
            loss = ((rebuilt - images).abs() * pixels).sum() / (pixels.sum() * c + 1e-5)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train.clip:
                nn.utils.clip_grad_norm_(pretrain.parameters(), train.clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
            if step % 200 == 0 or step == args.steps:
                print(f"step {step}: L1 on masked pixels {sum(losses[-200:]) / len(losses[-200:]):.4f}", flush=True)
            if step == args.steps:
                break
    seconds = time.perf_counter() - start
    weights = {f"tokenizer.{k}": v.detach().contiguous() for k, v in tokenizer.state_dict().items()}
    weights.update({f"core.{k}": v.detach().contiguous() for k, v in core.state_dict().items()})
    summary = {"recipe": args.recipe, "overrides": args.overrides, "steps": args.steps, "mask_ratio": args.mask_ratio,
               "lr": train.lr, "grid": list(grid), "cell": list(cell), "final_loss": float(
                   sum(losses[-100:]) / len(losses[-100:])), "seconds": round(seconds, 1)}
    if not math.isfinite(summary["final_loss"]):
        fail("the pre-training loss is not finite; lower --lr")
    partial = out.with_name(out.name + ".partial")  # renamed when complete: a crash leaves no half checkpoint
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(weights, str(partial / "model.safetensors"))
    # the files' sizes, as a checkpoint's state.json records them (init_from checks them)
    (partial / "state.json").write_text(json.dumps({"step": args.steps, "files": {
        "model.safetensors": (partial / "model.safetensors").stat().st_size}}) + "\n")
    (partial / "pretrain.json").write_text(json.dumps(summary, indent=1) + "\n")
    partial.rename(out)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
