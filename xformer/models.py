"""Tokenizer -> Core -> Head, composed; a registry of tokenizers and heads; build from config.

A tokenizer is an ``nn.Module`` with ``forward(batch, offset=0) -> Tokens``; a
head is an ``nn.Module`` with ``forward(hidden, tokens, batch) -> dict`` whose
"loss" (a mean) and "loss_weight" (how many targets it averaged) are present
when the batch holds targets. The core sees tensors and masks only: an adapter per
architecture (``CORE_ADAPTERS``) hands it the ``Tokens``' tensors. Domains register their parts by name:

    @register_tokenizer("text")
    def text_tokenizer(core: CoreConfig, vocab_size: int, ...) -> nn.Module: ...

    @register_head("causal_lm")
    def causal_lm_head(core: CoreConfig, tokenizer: nn.Module, ...) -> nn.Module: ...
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .config import ConfigError, from_dict
from .core import CoreConfig, DecoderCache, build, init_gpt2_
from .registry import (BASELINES, HEADS, TOKENIZERS, Registry, call_factory, register_baseline, register_head,
                       register_tokenizer)
from .tokens import Tokens

ARCHITECTURES = build.ARCHITECTURES  # name -> builder of the core from a CoreConfig (xformer/core/build.py)


def run_encoder(core: nn.Module, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
    """Encoder (or residual-attention encoder): every token sees every real token."""
    return core(tokens.x, tokens.padding_mask)


def run_decoder(core: nn.Module, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
    """Causal decoder; with a cache, ``tokens`` are the new positions and their mask covers cached + new."""
    return core(tokens.x, padding_mask=tokens.padding_mask, cache=cache)


def run_encoder_decoder(core: nn.Module, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
    """Encode ``tokens.source`` (once per decoding: the memory is kept in the cache), decode ``tokens``."""
    src = tokens.source
    if src is None:
        raise ValueError("an encoder-decoder needs source tokens (Tokens.source)")
    if cache is not None and cache.memory is not None:
        memory = cache.memory
    else:
        memory = core.encoder(src.x, src.padding_mask)
        if cache is not None:
            cache.memory = memory
    return core.decoder(tokens.x, memory, tokens.padding_mask, src.padding_mask, cache=cache)


CoreAdapter = Callable[[nn.Module, Tokens, "DecoderCache | None"], Tensor]
# architecture -> how the model hands a Tokens to that core: hidden = adapter(core, tokens, cache)
CORE_ADAPTERS: dict[str, CoreAdapter] = {"encoder": run_encoder, "decoder": run_decoder,
                                         "encoder-decoder": run_encoder_decoder}


def core_adapter(core: nn.Module) -> CoreAdapter:
    """The adapter for a core built without a ModelConfig, from what it can do."""
    if hasattr(core, "encoder") and hasattr(core, "decoder"):
        return run_encoder_decoder
    return run_decoder if hasattr(core, "new_cache") else run_encoder


@dataclass
class PartConfig:
    """A registered part by name, with the keyword arguments of its factory."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    architecture: Literal["encoder", "decoder", "encoder-decoder"] = "decoder"
    core: CoreConfig = field(default_factory=CoreConfig)
    tokenizer: PartConfig = field(default_factory=lambda: PartConfig("text"))
    head: PartConfig = field(default_factory=lambda: PartConfig("causal_lm"))
    # a classic model instead of Tokenizer -> Core -> Head (e.g. {name: dlinear}); the other keys are then unused
    baseline: PartConfig | None = None

    def __post_init__(self):
        """An unknown architecture or a part of the wrong type, as a caller in Python may give them, is a one-line
        ConfigError (a recipe's are refused by ``from_dict`` first); a part given as a mapping is read as a recipe's."""
        if not isinstance(self.architecture, str) or self.architecture not in ARCHITECTURES:
            close = difflib.get_close_matches(str(self.architecture), list(ARCHITECTURES), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"choose {', '.join(ARCHITECTURES)}"
            raise ConfigError(f"unknown architecture {self.architecture!r}; {hint}")
        for name, kind, example in (("core", CoreConfig, "CoreConfig(d_model=64, n_layers=2, n_heads=4)"),
                                    ("tokenizer", PartConfig, "PartConfig('text', {'vocab_size': 100})"),
                                    ("head", PartConfig, "PartConfig('causal_lm')"),
                                    ("baseline", PartConfig, "PartConfig('dlinear', {...}) or None")):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, from_dict(kind, value, name))
            elif not isinstance(value, kind) and not (name == "baseline" and value is None):
                if kind is PartConfig and isinstance(value, str):  # the part's name alone: it needs its args too
                    example = f"PartConfig({value!r}, {{...its args}})"
                raise ConfigError(f"ModelConfig {name}={value!r}: give a {kind.__name__} (or a mapping of its "
                                  f"fields), e.g. {name}={example}")


class Model(nn.Module):
    """Any xformer model: tokens = tokenizer(batch); hidden = adapter(core, tokens); out = head(hidden, tokens, batch).

    The adapter is ``CORE_ADAPTERS[config.architecture]`` (without a config, :func:`core_adapter`).
    ``untrained``: the names of the parameters a checkpoint did not give when the model was loaded from one
    (``load_pretrained``, ``load_bert``, ``init_from``): they hold random initial values (``check_trained``) until
    the Trainer steps them (``clear_stepped_untrained``)."""

    untrained: frozenset[str] = frozenset()

    def __init__(self, tokenizer: nn.Module, core: nn.Module, head: nn.Module, config: ModelConfig | None = None,
                 adapter: CoreAdapter | None = None):
        super().__init__()
        self.tokenizer, self.core, self.head = tokenizer, core, head
        self.config = config
        if adapter is None:
            adapter = CORE_ADAPTERS[config.architecture] if config is not None else core_adapter(core)
        self.adapter = adapter

    def forward(self, batch: dict, cache: DecoderCache | None = None) -> dict:
        tokens = self.tokenizer(batch, offset=cache.length if cache is not None else 0)
        return self.head(self.run_core(tokens, cache), tokens, batch)

    def run_core(self, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
        """The core's (B, N, d) output on ``tokens`` (their tensors and masks)."""
        return self.adapter(self.core, tokens, cache)

    def new_cache(self) -> DecoderCache:
        if not hasattr(self.core, "new_cache"):
            raise TypeError("only decoder and encoder-decoder models decode incrementally")
        return self.core.new_cache()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def same_head(ours: str, theirs: str) -> bool:
    """Whether a head named ``theirs`` holds the weights of one named ``ours``: the same name, or both masked LMs
    (one head, ``MaskedLMHead``, with next-sentence prediction or without)."""
    from .heads.mlm import MASKED_LM_HEADS

    return ours == theirs or {ours, theirs} <= set(MASKED_LM_HEADS)


def module_names(names: list[str], among) -> str:
    """``names`` (of tensors) in words: a module whose tensors (of ``among``) are all listed is named once, of one
    partly listed the tensors; "none" for no name."""
    listed, tensors = set(names), {}
    for other in among:
        tensors.setdefault(other.rsplit(".", 1)[0], set()).add(other)
    parts = list(dict.fromkeys(module if tensors.get(module, set()) <= listed else name
                               for name in names for module in [name.rsplit(".", 1)[0]]))
    return ", ".join(parts) if parts else "none"


def untrained_line(model: nn.Module, source: str | None, consequence: str) -> str:
    """One line on ``model.untrained``: which layers ``source`` (a checkpoint, e.g. hf:FOLDER) did not give, the
    ``consequence``, and the fix: fine-tune them (init_from), or a checkpoint that holds them."""
    own = model.state_dict()
    names = [name for name in own if name in model.untrained]
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    parts = module_names(names, own)
    bert = " (BERT's masked-LM head: a BertForMaskedLM or BertForPreTraining folder)" \
        if any(name.startswith(("head.dense.", "head.decoder.")) for name in names) else ""
    return (f"{source or 'the model'}: {parts} {'were' if ', ' in parts else 'was'} not read from the checkpoint, "
            f"left fresh ({shown}): untrained, {consequence}; fine-tune it first (xformer train RECIPE --init-from "
            f"{source or 'SOURCE'}), or use a checkpoint that holds them{bert}")


def check_trained(model: nn.Module, use: str, source: str | None = None) -> None:
    """Refuse (ConfigError) to use the output of a model whose ``untrained`` names any parameter: ``use`` (a score,
    generated text, an export) would be of random weights. Hugging Face warns when such a model is loaded ("Some
    weights of BertForMaskedLM were not initialized from the model checkpoint ... You should probably TRAIN this
    model"); ``load_pretrained`` warns alike, and this is where the output would be used."""
    if getattr(model, "untrained", None):
        raise ConfigError(untrained_line(model, source, f"so {use} would be of random weights"))


def clear_stepped_untrained(model: nn.Module) -> None:
    """Before an optimizer step: the parameters of ``model.untrained`` that have a gradient are trained by it, and
    no longer named (the Trainer's model is then used as trained); a frozen one, or one no loss reaches (an NSP
    layer without sentence pairs), stays named."""
    if getattr(model, "untrained", None):
        model.untrained = model.untrained - {name for name, p in model.named_parameters(remove_duplicate=False)
                                             if p.grad is not None}


def build_part(table: Registry, kind: str, part: PartConfig, **fixed) -> nn.Module:
    """The part ``table`` registers as ``part.name``, built with ``part.args`` (and the ``fixed`` arguments the
    model supplies); an unknown name or argument, or a value out of range, is a one-line ConfigError."""
    return call_factory(table.lookup(part.name), part.args, kind, part.name, **fixed)


def build_model(config: ModelConfig) -> nn.Module:
    """Compose the tokenizer, core and head named in ``config`` (or build its ``baseline``)."""
    import_parts()
    if config.baseline is not None:
        return build_part(BASELINES, "baseline", config.baseline)
    tokenizer = build_part(TOKENIZERS, "tokenizer", config.tokenizer, core=config.core)
    core = ARCHITECTURES[config.architecture](config.core)
    head = build_part(HEADS, "head", config.head, core=config.core, tokenizer=tokenizer)
    if config.core.init == "gpt2":
        # the core builder initialised the core; the tokenizer and head get the same N(0, 0.02)
        init_gpt2_keeping_own_(tokenizer, config.core.n_layers)
        init_gpt2_keeping_own_(head, config.core.n_layers)
    return Model(tokenizer, core, head, config)


def init_gpt2_keeping_own_(part: nn.Module, n_layers: int) -> None:
    """``init_gpt2_`` on a tokenizer or head, except the submodules the part names in its ``keeps_own_init``
    (e.g. image_conv's convolutional stem, whose Kaiming init N(0, 2 / fan_in) N(0, 0.02) would replace)."""
    kept = [p for name in getattr(part, "keeps_own_init", ()) for p in part.get_submodule(name).parameters()]
    saved = [p.detach().clone() for p in kept]
    # init_gpt2_ still draws for the kept parameters, then they get their values back: every other
    # parameter receives exactly the numbers it received before parts could keep their init
    init_gpt2_(part, n_layers)
    with torch.no_grad():
        for p, value in zip(kept, saved):
            p.copy_(value)


def import_parts() -> None:
    """Importing the modules of tokenizers, heads and baselines registers them by name."""
    from .registry import import_all_submodules

    import_all_submodules("xformer.tokenizers")
    import_all_submodules("xformer.heads")
    import_all_submodules("xformer.baselines")
