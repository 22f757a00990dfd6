"""A tiny model that learns a real task in seconds: the first thing `xformer demo` shows.

The demo trains an encoder-decoder to reverse digit sequences and a decoder to
copy them with the Trainer (the same recipes as tasks/reverse.yaml and
tasks/copy.yaml, one pass over fresh examples), then decodes unseen sequences
greedily with the KV cache and reports token accuracy.
"""
from __future__ import annotations

import time

from .config import from_dict
from .models import Model
from .train.config import ExperimentConfig
from .train.distributed import World
from .train.progress import Progress
from .train.run import build
from .train.trainer import Trainer


def recipe(architecture: str, steps: int = 600, seed: int = 0) -> ExperimentConfig:
    """d_model 64, 2 layers, 4 heads; AdamW 3e-3, 10% warmup then cosine, batch 64, each example seen once."""
    seq2seq = architecture == "encoder-decoder"
    return from_dict(ExperimentConfig, {
        "model": {"architecture": architecture,
                  "core": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128},
                  "tokenizer": {"name": "seq2seq_text" if seq2seq else "text", "args": {"max_positions": 32}},
                  "head": {"name": "causal_lm"}},
        "data": {"name": "reverse_digits" if seq2seq else "copy_digits", "args": {"n_train": 64 * steps, "seed": seed}},
        "train": {"steps": steps, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0, "warmup_steps": steps // 10,
                  "clip": 1.0, "eval_every": steps, "log_every": steps, "seed": seed, "device": "cpu"},
    })


def train_task(config: ExperimentConfig, progress: Progress | None = None) -> tuple[Model, float]:
    """Train without a run folder; return the model and its greedy token accuracy on the test split.
    ``progress``: where the steps are shown (default: the trainer's own)."""
    model, data = build(config)
    data.val = None  # the demo reports the test split only
    trainer = Trainer(model, data, config.train, None, World())
    trainer.fit(progress=progress)
    return model, trainer.evaluate("test")["token_accuracy"]


def train_reversal(steps: int = 600, seed: int = 0, progress: Progress | None = None) -> tuple[Model, float]:
    return train_task(recipe("encoder-decoder", steps, seed), progress)


def train_copy(steps: int = 600, seed: int = 0, progress: Progress | None = None) -> tuple[Model, float]:
    return train_task(recipe("decoder", steps, seed), progress)


def main(steps: int = 600, seed: int = 0, quiet: bool = False) -> dict:
    results = {}
    for name, train in (("reverse digits (encoder-decoder)", train_reversal), ("copy digits (decoder)", train_copy)):
        start = time.perf_counter()
        with Progress(steps, label="demo", quiet=quiet) as progress:  # closed before the result is printed
            progress.start(name)
            model, accuracy = train(steps, seed, progress)
        results[name] = {"token_accuracy": accuracy, "parameters": model.num_parameters(),
                         "train_seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: greedy token accuracy {accuracy:.4f} after {steps} steps "
              f"({model.num_parameters():,} parameters, {results[name]['train_seconds']} s)")
    return results


__all__ = ["main", "recipe", "train_task", "train_reversal", "train_copy"]
