"""Where does a ViT look? Per-head attention maps and attention rollout (Abnar & Zuidema 2020).

Attention rollout follows information from the input tokens through the layers.
With A_l the attention of layer l averaged over heads (B, N, N), the residual
connection is accounted for by mixing in the identity,

    A^_l = 0.5 I + 0.5 A_l        (rows still sum to 1; renormalised for safety)
    R    = A^_L A^_{L-1} ... A^_1,

so R[i, j] is how much of input token j reaches output token i. For a model with a
[CLS] token the map of an image is R[0, patches]; without one, the mean over the
patch rows. Maps come from :func:`capture_attention` (the explicit path).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import Tensor, nn

from ..batch import IMAGES
from ..folders import save_figure
from ..tokens import TokenState


@contextlib.contextmanager
def capture_attention(model: nn.Module):
    """Run ``model`` on the explicit path and collect every attention module's weights.

    Attention modules (those with the ``keep_weights`` / ``last_weights`` hooks, e.g.
    ``xformer.core.SelfAttention``) compute softmax(Q K^T / sqrt(d_k) + M) written out while
    ``keep_weights`` is set, and keep the weights.

    >>> with capture_attention(model) as maps:
    ...     model(batch)
    >>> maps[0].shape   # (B, heads, N_q, N_k) of the first attention layer
    """
    modules = [m for m in model.modules() if hasattr(m, "keep_weights") and hasattr(m, "last_weights")]
    maps: list[Tensor] = []
    for m in modules:
        m.keep_weights = True
    try:
        yield maps
    finally:
        for m in modules:
            if m.last_weights is not None:
                maps.append(m.last_weights.detach())
            m.keep_weights, m.last_weights = False, None


@torch.no_grad()
def collect_attention(model: nn.Module, batch: dict) -> tuple[list[Tensor], TokenState, dict]:
    """Run ``model`` (tokenizer, core, head) on ``batch``; return (maps, tokens.state, head output).

    maps: one (B, heads, N, N) tensor per core layer, in order (the head's own attention
    pooling, if any, is not among them).
    """
    tokens = model.tokenizer(batch)
    with capture_attention(model.core) as maps:
        hidden = model.run_core(tokens)
    return maps, tokens.state, model.head(hidden, tokens, batch)


def attention_rollout(maps: list[Tensor], residual: float = 0.5) -> Tensor:
    """R = prod_l (residual I + (1 - residual) mean_heads A_l), shape (B, N, N); every row sums to 1."""
    rollout = None
    for a in maps:
        a = a.float().mean(dim=1)
        eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
        a = residual * eye + (1.0 - residual) * a
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    if rollout is None:
        raise ValueError("no attention maps: run the model inside capture_attention first")
    return rollout


def token_map(rows: Tensor, state: TokenState) -> Tensor:
    """Attention from the [CLS] row (or the mean patch row) to the patches, as (B, rows, cols) grids.

    ``rows``: (B, N, N) rollout or one head's (B, N, N) attention.
    """
    n_prefix, grid = state.prefix_tokens or 0, state.grid
    if grid is None:
        raise ValueError("the tokenizer put no 'grid' in Tokens.state; attention maps need image patches")
    source = rows[:, 0] if state.class_token else rows[:, n_prefix:].mean(dim=1)
    return source[:, n_prefix:].reshape(-1, *grid)


def save_attention_grid(model: nn.Module, image: Tensor, path: str | Path, title: str | None = None,
                        mean: list[float] | None = None, std: list[float] | None = None) -> Path:
    """PNG: the image and its rollout in the first row, then one row per layer, one column per head.

    ``image``: (C, H, W) as the model takes it; ``mean``/``std`` undo a normalisation for display.
    """
    from matplotlib.figure import Figure  # not pyplot: the caller's backend and open figures stay as they are

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        maps, state, out = collect_attention(model, {IMAGES: image[None].to(device)})
    finally:
        model.train(was_training)
    rollout = token_map(attention_rollout(maps), state)[0].cpu()
    shown = image.detach().float().cpu()
    if mean is not None:
        shown = shown * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    shown = shown.clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
    n_layers, n_heads = len(maps), maps[0].shape[1]
    cols = max(n_heads, 3)
    fig = Figure(figsize=(1.6 * cols, 1.6 * (n_layers + 1)))
    axes = fig.subplots(n_layers + 1, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    cmap = "gray" if shown.ndim == 2 else None
    axes[0, 0].imshow(shown, cmap=cmap)
    axes[0, 0].set_title(title or f"class {int(out['logits'].argmax(-1)[0])}", fontsize=8)
    axes[0, 1].imshow(rollout.numpy(), cmap="inferno")
    axes[0, 1].set_title("rollout", fontsize=8)
    up = nn.functional.interpolate(rollout[None, None], size=shown.shape[:2], mode="bilinear")[0, 0]
    axes[0, 2].imshow(shown, cmap=cmap)
    axes[0, 2].imshow(up.numpy(), cmap="inferno", alpha=0.6)
    axes[0, 2].set_title("overlay", fontsize=8)
    for layer, a in enumerate(maps):
        heads = token_map(a[0].cpu(), state)  # the heads as the batch dimension: (heads, rows, cols)
        for h in range(n_heads):
            axes[layer + 1, h].imshow(heads[h].numpy(), cmap="viridis")
            axes[layer + 1, h].set_title(f"layer {layer} head {h}", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


__all__ = ["capture_attention", "collect_attention", "attention_rollout", "token_map", "save_attention_grid"]
