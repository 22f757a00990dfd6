"""A tiny model that learns a real task in seconds: the first thing `xformer demo` shows.

The demo trains an encoder-decoder to reverse digit sequences and a decoder to
copy them, then decodes unseen sequences greedily with the KV cache and
reports token accuracy.
"""
from __future__ import annotations

import time

import torch

from .core import CoreConfig
from .data.synthetic import BOS, VOCAB_SIZE, copy_batch, reverse_batch
from .generation import greedy
from .models import Model, ModelConfig, PartConfig, build_model


def tiny_model(architecture: str, seed: int = 0) -> Model:
    torch.manual_seed(seed)
    core = CoreConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128)
    tokenizer = "seq2seq_text" if architecture == "encoder-decoder" else "text"
    return build_model(ModelConfig(architecture, core, PartConfig(tokenizer, {"vocab_size": VOCAB_SIZE,
                                                                              "max_positions": 32}),
                                   PartConfig("causal_lm")))


def _fit(model: Model, make_batch, steps: int, lr: float, seed: int) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses = []
    model.train()
    for _ in range(steps):
        loss = model(make_batch(generator))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def reversal_accuracy(model: Model, n: int = 512, seed: int = 1234) -> float:
    """Greedy-decoded token accuracy on ``n`` unseen sequences (digits and the final SEP)."""
    batch = reverse_batch(n, generator=torch.Generator().manual_seed(seed))
    prompt = {"src_ids": batch["src_ids"], "src_mask": batch["src_mask"], "input_ids": torch.full((n, 1), BOS)}
    predicted = greedy(model, prompt, max_new_tokens=batch["labels"].shape[1])
    real = batch["labels"] != -100
    return (predicted[real] == batch["labels"][real]).float().mean().item()


def copy_accuracy(model: Model, n: int = 512, length: int = 8, seed: int = 1234) -> float:
    batch = copy_batch(n, length, generator=torch.Generator().manual_seed(seed))
    prompt = {"input_ids": batch["input_ids"][:, : length + 1]}
    predicted = greedy(model, prompt, max_new_tokens=length)
    return (predicted == batch["input_ids"][:, length + 1:]).float().mean().item()


def train_reversal(steps: int = 600, seed: int = 0) -> tuple[Model, float]:
    model = tiny_model("encoder-decoder", seed)
    _fit(model, lambda g: reverse_batch(64, generator=g), steps, 3e-3, seed)
    return model, reversal_accuracy(model)


def train_copy(steps: int = 600, seed: int = 0) -> tuple[Model, float]:
    model = tiny_model("decoder", seed)
    _fit(model, lambda g: copy_batch(64, generator=g), steps, 3e-3, seed)
    return model, copy_accuracy(model)


def main(steps: int = 600, seed: int = 0) -> dict:
    results = {}
    for name, train in (("reverse digits (encoder-decoder)", train_reversal), ("copy digits (decoder)", train_copy)):
        start = time.perf_counter()
        model, accuracy = train(steps, seed)
        results[name] = {"token_accuracy": accuracy, "parameters": model.num_parameters(),
                         "train_seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: greedy token accuracy {accuracy:.4f} after {steps} steps "
              f"({model.num_parameters():,} parameters, {results[name]['train_seconds']} s)")
    return results


__all__ = ["main", "train_reversal", "train_copy"]
