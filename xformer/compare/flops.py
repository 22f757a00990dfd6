"""What ``xformer compare`` measures of each model: parameters, the tokens the core reads per example
and the FLOPs of one example's forward pass.

FLOPs (multiply-add = 2 FLOPs), for a core of L layers reading S sequences of N tokens (S = C channels for channel-independent series patches, else 1):

    attention     = L S (8 N d^2 + 4 N^2 d)     q, k, v, output projections; q k^T and the weighted sum
    feed-forward  = L S (4 N d d_ff)            two linear maps

(the causal mask does not halve the count: the fused kernels compute the full score matrix).
``total`` is counted by ``torch.utils.flop_counter`` over the whole model (embeddings, heads) plus
the terms it cannot see: the score matrices of fused attention and recurrent layers
(per step and direction 2 g h (i + h) for g gates, input size i, hidden size h).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..batch import LABELS
from .experiments import Entry


def one_example(data, device) -> dict:
    """A batch of one example from the training split."""
    loader = DataLoader(data.train, batch_size=1, collate_fn=data.collate)
    batch = next(iter(loader))
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def core_shape(model: nn.Module, batch: dict) -> dict[str, int] | None:
    """What the core reads for one example: S sequences of N tokens (and an encoder-decoder's
    source length); None for a baseline."""
    if not hasattr(model, "core"):
        return None
    with torch.no_grad():
        tokens = model.tokenizer({k: v for k, v in batch.items() if k != LABELS})
    source = getattr(tokens, "source", None)
    return {"sequences": tokens.x.shape[0],  # a batch of one example: S = the batch dimension
            "tokens": tokens.x.shape[1], "source_tokens": source.x.shape[1] if source is not None else 0}


def transformer_flops(core: dict, sequences: int, n_tokens: int, source_tokens: int = 0) -> dict[str, int]:
    """Attention and feed-forward FLOPs of one example (see the module docstring); ``scores``: the
    q k^T and weighted-sum part of ``attention``. An encoder-decoder (``source_tokens`` = S > 0,
    target length T = ``n_tokens``) adds per layer the encoder's 8 S d^2 + 4 S^2 d and the
    cross-attention's 4 T d^2 + 4 S d^2 (q, output; k, v) + 4 T S d."""
    d, d_ff, layers = core["d_model"], core["d_ff"], core["n_layers"]
    n, src = n_tokens, source_tokens
    scores = 4 * n * n * d + (4 * src * src * d + 4 * n * src * d if src else 0)
    projections = 8 * n * d * d + (8 * src * d * d + 4 * n * d * d + 4 * src * d * d if src else 0)
    return {"attention": layers * sequences * (projections + scores), "scores": layers * sequences * scores,
            "feed_forward": layers * sequences * 4 * (n + src) * d * d_ff}


def forward_flops(model: nn.Module, batch: dict) -> int:
    """FLOPs of one forward pass on ``batch`` (see the module docstring for what is added by hand)."""
    from torch.utils.flop_counter import FlopCounterMode

    extra = []

    def recurrent(module: nn.RNNBase, inputs, _):
        x = inputs[0]  # (B, T, i) / (T, B, i), or packed: (sum of the B lengths, i)
        steps = x.data.shape[0] if isinstance(x, nn.utils.rnn.PackedSequence) else x.shape[0] * x.shape[1]
        gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        directions = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            size_in = module.input_size if layer == 0 else module.hidden_size * directions
            extra.append(directions * steps * 2 * gates * module.hidden_size * (size_in + module.hidden_size))

    hooks = [m.register_forward_hook(recurrent) for m in model.modules() if isinstance(m, nn.RNNBase)]
    try:
        with FlopCounterMode(display=False) as counter:  # not under no_grad: its module tracker needs autograd
            model({k: v for k, v in batch.items() if k != LABELS})
    finally:
        for hook in hooks:
            hook.remove()
    return int(counter.get_total_flops()) + sum(extra)


def measure(entry: Entry, model: nn.Module, data) -> dict:
    device = next(iter(model.parameters()), torch.empty(0)).device
    batch = one_example(data, device)
    was_training = model.training
    model.eval()
    row = {"parameters": sum(p.numel() for p in model.parameters()), "tokens_per_example": None,
           "attention_flops": None, "feed_forward_flops": None}
    shape = core_shape(model, batch)
    total = forward_flops(model, batch)
    if shape is not None:
        split = transformer_flops(entry.experiment["model"]["core"], shape["sequences"], shape["tokens"],
                                  shape["source_tokens"])
        row.update(tokens_per_example=shape["sequences"] * shape["tokens"] + shape["source_tokens"],
                   sequences_per_example=shape["sequences"], source_tokens=shape["source_tokens"],
                   attention_flops=split["attention"], feed_forward_flops=split["feed_forward"])
        total += split["scores"]  # the fused score matrices the counter does not see
    row["forward_flops"] = total
    model.train(was_training)
    return row


__all__ = ["one_example", "core_shape", "transformer_flops", "forward_flops", "measure"]
