"""`xformer compare`: one transformer core in three domains, beside the models it replaced.

For each domain the same core (``d_model``, ``n_layers``, ``n_heads``, ``d_ff``) is put between
that domain's tokenizer and head and trained on the domain's embedded default data, and so
are the domain's classic baselines (``xformer.baselines``), all with the same trainer, budget
and seed:

    text    next-character LM on the bundled Python reference manual (or --text-data FILES):
            GPT-style decoder  vs  feed-forward n-gram LM (Bengio 2003), RNN LM, LSTM LM
    images  scikit-learn's 8x8 digits: ViT encoder  vs  MLP, small CNN
    series  generated hourly series (or --series-data CSV): PatchTST-style encoder
            vs  DLinear, LSTM forecaster; last value and seasonal naive (nothing to train)
    seq2seq (not in the default set) reversing digit sequences: encoder-decoder transformer
            vs  LSTM encoder-decoder with Bahdanau attention, both decoded greedily

Every model gets its own run folder under ``OUT/runs/<domain>/<model>`` (the ``xformer train``
layout); :func:`run_comparison` measures each (parameters, tokens per example, forward FLOPs
per example split into attention and feed-forward for the transformers, training throughput,
wall time, final metric) and :mod:`xformer.analysis.compare_report` writes report.md,
report.html, results.json and the plots.

FLOPs of one example's forward pass (multiply-add = 2 FLOPs), for a core of L layers reading S
sequences of N tokens (S = C channels for channel-independent series patches, else 1):

    attention     = L S (8 N d^2 + 4 N^2 d)     q, k, v, output projections; q k^T and the weighted sum
    feed-forward  = L S (4 N d d_ff)            two linear maps

(the causal mask does not halve the count: the fused kernels compute the full score matrix).
``total`` is counted by ``torch.utils.flop_counter`` over the whole model (embeddings, heads) plus
the terms it cannot see: the score matrices of fused attention and recurrent layers
(per step and direction 2 g h (i + h) for g gates, input size i, hidden size h).
"""
from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .config import ConfigError, from_dict
from .folders import OutputFolder
from .train.config import ExperimentConfig
from .train.distributed import pick_device

DOMAINS = ("text", "images", "series", "seq2seq")
DEFAULT_DOMAINS = ("text", "images", "series")
METRIC = {"text": ("val_bits_per_character", "min"), "images": ("test_accuracy", "max"),
          "series": ("test_mse", "min"), "seq2seq": ("test_token_accuracy", "max")}


@dataclass
class CompareConfig:
    """What ``xformer compare`` runs. ``steps`` per trained model; ``seconds`` caps each run's time too."""

    domains: list[str] = field(default_factory=lambda: list(DEFAULT_DOMAINS))
    steps: int = 1000
    seconds: float | None = None
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    batch_size: int = 32
    text_data: list[str] | None = None
    series_data: str | None = None
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        unknown = [d for d in self.domains if d not in DOMAINS]
        if unknown or not self.domains:
            raise ConfigError(f"unknown domain(s) {unknown}; choose from {', '.join(DOMAINS)}")
        if self.steps < 1 or (self.seconds is not None and self.seconds <= 0):
            raise ConfigError("--steps must be >= 1 and --seconds > 0")
        for option, value, low in (("--d-model", self.d_model, 1), ("--layers", self.n_layers, 1),
                                   ("--heads", self.n_heads, 1), ("--d-ff", self.d_ff, 1),
                                   ("--batch-size", self.batch_size, 1), ("--seed", self.seed, 0)):
            if value < low:
                raise ConfigError(f"{option} must be >= {low}, got {value}")
        pick_device(self.device, "--device")  # an absent GPU is refused before anything is trained
        if self.seed >= 2 ** 32:
            raise ConfigError(f"--seed must be below 2**32, got {self.seed}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"--d-model {self.d_model} must be divisible by --heads {self.n_heads}")


@dataclass
class Entry:
    """One model of a domain: a recipe for ``train_run``, or an untrained baseline (``trained=False``)."""

    domain: str
    name: str
    kind: str  # "transformer" | "baseline"
    experiment: dict[str, Any]
    trained: bool = True


def _core(cfg: CompareConfig, **extra) -> dict:
    return {"d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "d_ff": cfg.d_ff,
            "dropout": 0.0, **extra}


def _train(cfg: CompareConfig, lr: float) -> dict:
    return {"steps": cfg.steps, "batch_size": cfg.batch_size, "lr": lr, "warmup_steps": max(1, cfg.steps // 10),
            "schedule": "cosine", "min_lr": lr / 10, "eval_every": max(1, cfg.steps // 4),
            "log_every": max(1, min(10, cfg.steps // 10)), "keep_last": 1, "seed": cfg.seed, "device": cfg.device,
            "max_seconds": cfg.seconds}


def entries(cfg: CompareConfig) -> list[Entry]:
    """The models of each chosen domain, transformer first."""
    out = []
    if "text" in cfg.domains:
        data = {"name": "text_lm", "args": {"files": cfg.text_data, "tokenizer": "char", "block_size": 64}}
        train = _train(cfg, 3e-3)
        out.append(Entry("text", "GPT (decoder)", "transformer", {
            "model": {"architecture": "decoder", "core": _core(cfg), "tokenizer": {"name": "text"},
                      "head": {"name": "causal_lm"}}, "data": data, "train": train}))
        width = {"embed_dim": cfg.d_model, "hidden_dim": 2 * cfg.d_model}
        for name, label in (("ngram_lm", "n-gram MLP LM (Bengio 2003)"), ("rnn_lm", "RNN LM"),
                            ("lstm_lm", "LSTM LM")):
            out.append(Entry("text", label, "baseline", {
                "model": {"baseline": {"name": name, "args": dict(width)}}, "data": data, "train": train}))
    if "images" in cfg.domains:
        data = {"name": "digits", "args": {}}
        train = _train(cfg, 3e-3)
        out.append(Entry("images", "ViT (encoder)", "transformer", {
            "model": {"architecture": "encoder", "core": _core(cfg),
                      "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
                      "head": {"name": "classification", "args": {"pool": "cls"}}}, "data": data, "train": train}))
        for name, label in (("mlp", "MLP"), ("cnn", "CNN")):
            out.append(Entry("images", label, "baseline", {
                "model": {"baseline": {"name": name, "args": {}}}, "data": data, "train": train}))
    if "series" in cfg.domains:
        data = {"name": "csv_series", "args": {"path": cfg.series_data, "input_len": 96, "horizon": 24}}
        train = _train(cfg, 1e-3)
        out.append(Entry("series", "PatchTST (encoder)", "transformer", {
            "model": {"architecture": "encoder", "core": _core(cfg),
                      "tokenizer": {"name": "series_patches", "args": {"patch_len": 16, "stride": 8}},
                      "head": {"name": "forecast"}}, "data": data, "train": train}))
        for name, label in (("dlinear", "DLinear"), ("lstm_forecaster", "LSTM forecaster")):
            out.append(Entry("series", label, "baseline", {
                "model": {"baseline": {"name": name, "args": {}}}, "data": data, "train": train}))
        for name, label, args in (("last_value", "last value", {}), ("seasonal_naive", "seasonal naive (24)",
                                                                     {"period": 24})):
            out.append(Entry("series", label, "baseline", {
                "model": {"baseline": {"name": name, "args": args}}, "data": data, "train": train}, trained=False))
    if "seq2seq" in cfg.domains:
        data = {"name": "reverse_digits", "args": {"n_train": 20000, "min_len": 4, "max_len": 8}}
        train = _train(cfg, 3e-3)
        out.append(Entry("seq2seq", "Transformer (encoder-decoder)", "transformer", {
            "model": {"architecture": "encoder-decoder", "core": _core(cfg), "tokenizer": {"name": "seq2seq_text"},
                      "head": {"name": "causal_lm"}}, "data": data, "train": train}))
        out.append(Entry("seq2seq", "LSTM encoder-decoder + Bahdanau attention", "baseline", {
            "model": {"baseline": {"name": "lstm_seq2seq", "args": {"embed_dim": cfg.d_model,
                                                                    "hidden_dim": cfg.d_model}}},
            "data": data, "train": train}))
    return out


# ---- measuring ----------------------------------------------------------------------------------------------
def _example(data, device) -> dict:
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
        tokens = model.tokenizer({k: v for k, v in batch.items() if k != "labels"})
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
            model({k: v for k, v in batch.items() if k != "labels"})
    finally:
        for hook in hooks:
            hook.remove()
    return int(counter.get_total_flops()) + sum(extra)


def _measure(entry: Entry, model: nn.Module, data) -> dict:
    device = next(iter(model.parameters()), torch.empty(0)).device
    batch = _example(data, device)
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


# ---- running ------------------------------------------------------------------------------------------------
def run_comparison(cfg: CompareConfig, out: str | Path, quiet: bool = False, overwrite: bool = False) -> dict:
    """Train and measure every model; write the report folder ``out``; return results.json's content.
    ``quiet``: show no progress (see xformer/train/progress.py). A folder ``out`` that holds files is
    refused unless ``overwrite``: then the old report is moved aside until the new one is complete."""
    from .analysis.compare_report import write_report
    from .data.registry import build_data
    from .models import build_model
    from .train.config import fill_model_args
    from .train.progress import Progress
    from .train.run import load_run_model, train_run

    out = Path(out)
    folder = OutputFolder(out, overwrite, "report")
    runs = out / "runs"
    todo = entries(cfg)
    results: dict[str, Any] = {
        "config": asdict(cfg), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "domains": {d: {"metric": METRIC[d][0], "models": []} for d in cfg.domains}}
    datasets, models = {}, {}  # the data of each domain (one for all its models) and every model, for the plots
    progress = Progress(sum(e.trained for e in todo) * cfg.steps, label="compare", quiet=quiet)
    start = time.perf_counter()
    folder.replace()
    try:
        for entry in todo:
            progress.start(f"{entry.domain}: {entry.name}")  # the trainer reports its steps and evaluations
            experiment = from_dict(ExperimentConfig, copy.deepcopy(entry.experiment))
            if entry.domain not in datasets:
                datasets[entry.domain] = build_data(experiment.data.name, experiment.data.args)
            data = datasets[entry.domain]
            run_dir = runs / entry.domain / _slug(entry.name)
            row = {"name": entry.name, "kind": entry.kind, "run_dir": str(run_dir.relative_to(out)),
                   "experiment": entry.experiment}
            if entry.trained:
                before = progress.n
                wall = time.perf_counter()
                metrics = train_run(experiment, run_dir, progress=progress)
                row["wall_seconds"] = round(time.perf_counter() - wall, 2)
                progress.update(cfg.steps - (progress.n - before))  # a run stopped early still fills its share
                model = load_run_model(run_dir)[1]  # the weights its metrics describe
                row.update(steps=metrics["steps"], train_seconds=metrics["train_seconds"],
                           examples_per_second=round(metrics["steps"] * cfg.batch_size / metrics["train_seconds"], 1))
            else:
                fill_model_args(experiment.model, data.model_args)
                model = build_model(experiment.model)
                metrics = _evaluate_untrained(model, data)
                row.update(steps=0, train_seconds=0.0, wall_seconds=0.0, examples_per_second=None)
            models[entry.domain, entry.name] = model
            row.update(_measure(entry, model, data))
            row["tokens_per_step"] = (row["tokens_per_example"] * cfg.batch_size
                                      if row["tokens_per_example"] else None)
            row["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            row["metric"] = row["metrics"].get(METRIC[entry.domain][0])
            results["domains"][entry.domain]["models"].append(row)
        results["total_seconds"] = round(time.perf_counter() - start, 1)
        write_report(results, out, models, datasets)
    except BaseException:
        folder.failed()  # an incomplete report never replaces a complete one
        raise
    finally:
        progress.close()
    folder.started()
    return results


def _evaluate_untrained(model: nn.Module, data) -> dict[str, float]:
    """val/test metrics of a model with nothing to train (last value, seasonal naive)."""
    metrics = {}
    for split in ("val", "test"):
        dataset = getattr(data, split)
        if dataset is not None:
            loader = DataLoader(dataset, batch_size=256, collate_fn=data.collate)
            metrics.update({f"{split}_{k}": v for k, v in data.evaluate(model, loader).items()})
    return metrics


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower().split(" (")[0]).strip("_")


__all__ = ["CompareConfig", "DOMAINS", "Entry", "entries", "run_comparison", "transformer_flops", "forward_flops"]
