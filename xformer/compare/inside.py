"""Looking inside each domain's transformer with the same measures: attention entropy and mean attention
distance per layer and head (:mod:`xformer.analysis.attention_stats`), the distance in tokens and in the
domain's unit (text: characters; images: pixels between patch centres; series and classify: time steps between
patch starts). Measured on a batch of up to 16 validation examples (series, classify: every channel of each)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from ..analysis.attention_maps import collect_attention
from ..analysis.attention_stats import (attention_distance, attention_entropy, grid_coords, line_coords,
                                       uniform_like)
from ..batch import LABELS

UNIT = {"text": "characters", "images": "pixels", "series": "time steps", "classify": "time steps"}


def attention_measures(domain: str, model, data, tokenizer_args: dict) -> list[dict] | None:
    """[{layer, head, entropy, max_entropy, distance_tokens, distance_unit, unit, uniform_entropy,
    uniform_distance_unit}] of the model's self-attention layers (``uniform_*``: the same measures of attention
    spread evenly over the keys each query may see); None for a domain whose maps are not one token grid
    (seq2seq: self- and cross-attention)."""
    if domain not in UNIT:
        return None
    split = data.val if data.val is not None else data.train
    batch = next(iter(DataLoader(split, batch_size=min(16, len(split)), collate_fn=data.collate)))
    batch = {k: v for k, v in batch.items() if k != LABELS}
    model = model.cpu().eval()
    maps, state, _ = collect_attention(model, batch)
    n = maps[0].shape[-1]
    prefix = state.prefix_tokens or 0
    if domain == "images" and state.grid is not None:
        patch = tokenizer_args.get("patch_size", 1)
        tokens, unit = grid_coords(*state.grid), grid_coords(*state.grid, step=patch)
    else:
        step = tokenizer_args.get("stride", 1) if domain in ("series", "classify") else 1
        tokens, unit = line_coords(n - prefix), line_coords(n - prefix, step=step)
    rows = []
    for layer, a in enumerate(maps):
        entropy = attention_entropy(a, prefix)
        in_tokens, in_unit = attention_distance(a, tokens, prefix), attention_distance(a, unit, prefix)
        uniform = uniform_like(a)
        flat_entropy, flat_unit = attention_entropy(uniform, prefix), attention_distance(uniform, unit, prefix)
        for head in range(a.shape[1]):
            rows.append({"layer": layer, "head": head, "entropy": round(float(entropy[head]), 4),
                         "max_entropy": round(float(torch.log(torch.tensor(float(n - prefix)))), 4),
                         "distance_tokens": round(float(in_tokens[head]), 3),
                         "distance_unit": round(float(in_unit[head]), 3), "unit": UNIT[domain],
                         "uniform_entropy": round(float(flat_entropy[head]), 4),
                         "uniform_distance_unit": round(float(flat_unit[head]), 3)})
    return rows


__all__ = ["attention_measures", "UNIT"]
