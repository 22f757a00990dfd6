"""Pre-trained weights of other libraries as a starting point: ``hf:FOLDER`` and ``timm:FILE#MODEL``.

    init_from: hf:models/gpt2-small            a local Hugging Face folder (save_pretrained): GPT-2, BERT, ViT
                                               (hf_vit.py) or PatchTSTForPrediction (a forecaster: hf_patchtst.py)
    init_from: timm:vit.safetensors#vit_tiny_patch16_224           a timm ViT state dict and its model name
    init_from: "timm:vit.pth#vit_tiny_patch16_224,num_heads=4"     extra timm.create_model arguments

``hf:FOLDER`` reads ``config.json`` (``model_type`` gpt2, bert, vit or patchtst) and ``model.safetensors``, else
``pytorch_model.bin`` with ``torch.load(weights_only=True)``, else the shards of a sharded checkpoint
(hf_checkpoint.py): loading never runs code from a file and nothing is downloaded. The folder's tokenizer
(``tokenizer.json``; else GPT-2's ``vocab.json`` + ``merges.txt`` or BERT's ``vocab.txt``) becomes the run's
vocabulary, its ids unchanged; its special tokens take xformer's names ([EOS], [PAD], [UNK], [CLS], [SEP],
[MASK]), e.g. GPT-2's <|endoftext|> is the run's [EOS] (``xformer export --format hf`` names it <|endoftext|>
again, export.py). transformers is not needed for any of this (only the tokenizers library).

``timm:FILE#MODEL``: FILE is a ``.safetensors`` or ``.pth`` / ``.pt`` / ``.bin`` state dict (a training
checkpoint's ``state_dict`` / ``model`` entry too); MODEL is the timm model name it was created with. Sizes the
weights show (depth, width, patch size, channels, image size, class and register tokens, fc_norm, classes, MLP
ratio; average pooling without a class token) are read from the tensors and passed to
``timm.create_model(MODEL, pretrained=False, ...)``, with the ``model_args`` of a timm Hub config.json beside FILE
that names MODEL (an ``xformer export --format timm`` folder); anything else (e.g. ``num_heads``) follows the name,
or ``,key=value`` after it (a non-square file's ``img_size=[H,W]`` too; timm_file.py refuses pairs the tensors
contradict and timm's dropout arguments, which are the recipe's). The weights are loaded strictly, then converted
(``timm_vit.from_timm_vit``).

Python: ``load_pretrained(SOURCE)`` -> (Model in eval mode with the checkpoint's own head, vocabulary or
None); SOURCE is ``hf:FOLDER``, ``timm:FILE#MODEL`` or a plain Hugging Face folder. A folder without the head
(a ``BertModel``; a question answerer read as its encoder) gives one left untrained: ``model.untrained``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from ..errors import ConfigError
from ..models import ModelConfig, build_model, same_head, untrained_line
from .hf_checkpoint import read_hf_folder, read_weights_file
from .timm_file import split_pairs, timm_checkpoint, timm_pairs

# what a recipe's head may be on each kind of checkpoint
HEADS = {"gpt2": ("causal_lm",), "bert": ("masked_lm", "masked_lm_nsp", "classification"),
         "timm": ("classification",), "vit": ("classification",), "patchtst": ("forecast",)}
IMAGE_KINDS = ("timm", "vit")  # checkpoints that read images
# the recipe's, not the checkpoint's (fine-tuning regularisation; init only touches a fresh head)
FREE_CORE_KEYS = ("dropout", "attn_dropout", "attn_proj_dropout", "drop_path", "init")
# the recipe's when it sets them: no weight depends on them (timm's LayerNorm eps 1e-6 on a Hugging Face ViT's 1e-12,
# which xformer export --format timm asks for)
ADJUSTABLE_CORE_KEYS = ("norm_eps",)
_ROLES = {"eos": "[EOS]", "pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]",
          "bos": "[BOS]"}


@dataclass
class Pretrained:
    """A checkpoint read from ``source``: its model config, its weights under xformer's names, and (hf:) the
    ``tokenizers.Tokenizer`` of its folder with xformer's special-token names."""

    source: str
    kind: str  # gpt2, bert, vit, patchtst (a forecaster: no tokenizer), timm
    model: ModelConfig
    weights: dict[str, Tensor]
    tokenizer: object | None = None
    renamed: dict[str, str] = field(default_factory=dict)  # the folder's special-token names -> xformer's
    class_names: list[str] | None = None  # a classifier's classes in the order of its logits (id2label)
    normalisation: dict | None = None  # an image model's {"mean", "std"} (its image processor, timm's pretrained_cfg)
    architecture: str | None = None  # a Hugging Face folder's class (config.json's architectures), e.g. BertForMaskedLM
    unread: dict[str, str] = field(default_factory=dict)  # its layers no xformer head is -> what each is

    def vocabulary(self):
        """The tokenizer as an xformer vocabulary (``WordPieceVocab``) that reads the folder's own names of its
        special tokens in text as those tokens (GPT-2's <|endoftext|>); None without a tokenizer."""
        from ..data.vocab import WordPieceVocab

        return None if self.tokenizer is None else WordPieceVocab(self.tokenizer, lowercase=False, aliases=self.renamed)


def is_pretrained_source(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(("hf:", "timm:"))


def parse_source(spec: str) -> tuple[str, str, str | None, dict]:
    """``hf:PATH`` -> ("hf", PATH, None, {}); ``timm:PATH#NAME,k=v`` -> ("timm", PATH, NAME, {k: v})."""
    kind, _, rest = spec.partition(":")
    if kind == "hf":
        if not rest:
            raise ConfigError("init_from hf: needs a folder, e.g. init_from: hf:models/gpt2 (a save_pretrained folder)")
        return "hf", rest, None, {}
    path, _, model = rest.partition("#")
    name, *pairs = split_pairs(model) if model else [""]
    if not path or not name:
        raise ConfigError(f"init_from {spec}: give the file and the timm model name, "
                          "e.g. timm:vit.safetensors#vit_tiny_patch16_224")
    return "timm", path, name.strip(), timm_pairs(spec, pairs)


# ---------------------------------------------------------------- Hugging Face folders


def _special_tokens(folder: Path, config: dict, tokenizer) -> dict[str, str]:
    """role -> token string, from tokenizer_config.json / special_tokens_map.json and config.json's ids."""
    found = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            entries = json.loads((folder / name).read_text(encoding="utf-8"))
            for role in _ROLES:
                value = entries.get(f"{role}_token")
                value = value.get("content") if isinstance(value, dict) else value
                if isinstance(value, str):
                    found.setdefault(role, value)
    for role in _ROLES:
        token_id = config.get(f"{role}_token_id")
        if isinstance(token_id, int) and role not in found and tokenizer.id_to_token(token_id) is not None:
            found[role] = tokenizer.id_to_token(token_id)
    return found


def _rename(node, old: str, new: str):
    """Every string (and mapping key) equal to ``old`` in a tokenizer.json tree, renamed ``new``."""
    if isinstance(node, dict):
        return {(new if k == old else k): _rename(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename(v, old, new) for v in node]
    return new if node == old else node


def folder_tokenizer(folder: str | Path):
    """The folder's tokenizer as a ``tokenizers.Tokenizer`` under the folder's own token names, or None."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():  # GPT-2's slow files
        tokenizer = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
    elif (folder / "vocab.txt").is_file():  # BERT's slow file
        settings = {}
        if (folder / "tokenizer_config.json").is_file():
            settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer = Tokenizer(models.WordPiece.from_file(str(folder / "vocab.txt"), unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=settings.get("do_lower_case", True))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
    else:
        return None
    return tokenizer


def hf_tokenizer(folder: str | Path, config: dict):
    """(the folder's tokenizer whose special tokens carry xformer's names (same ids), {the folder's name: xformer's}
    of those renamed), or (None, {}) when the folder holds no tokenizer files. ``xformer export --format hf`` gives
    them back their names (export.py)."""
    from tokenizers import Tokenizer

    tokenizer = folder_tokenizer(folder)
    if tokenizer is None:
        return None, {}
    specials = _special_tokens(Path(folder), config, tokenizer)
    existing = [t for t in specials.values() if t in tokenizer.get_vocab()]
    tokenizer.add_special_tokens(existing)  # special: skipped when decoding, never split
    tree, taken, renamed = json.loads(tokenizer.to_str()), set(tokenizer.get_vocab()), {}
    for role, ours in _ROLES.items():
        theirs = specials.get(role)
        if theirs is None or theirs == ours or theirs not in taken or ours in taken:
            continue
        tree = _rename(tree, theirs, ours)
        taken = (taken - {theirs}) | {ours}
        renamed[theirs] = ours
    return Tokenizer.from_str(json.dumps(tree)), renamed


def load_hf(folder: str | Path, source: str | None = None) -> Pretrained:
    """A GPT-2, BERT, ViT or PatchTST checkpoint folder, converted to xformer names (hf_gpt2.py, hf_bert.py, hf_vit.py,
    hf_patchtst.py)."""
    from .hf_bert import bert_checkpoint, other_head, without_other_classifier
    from .hf_gpt2 import gpt2_checkpoint, gpt2_unread
    from .hf_patchtst import patchtst_checkpoint
    from .hf_vit import vit_config_to_xformer, vit_normalisation, vit_state_dict_to_xformer, vit_unread
    from .support import hf_class_names

    source = source or f"hf:{folder}"
    config, state = read_hf_folder(folder)
    kind, classes, normalisation, unread = config.get("model_type"), None, None, {}
    architecture = next(iter(config.get("architectures") or []), None)
    try:
        if kind == "gpt2":
            model, weights = gpt2_checkpoint(config, state)
            unread = gpt2_unread(state)  # e.g. a GPT2ForSequenceClassification's score
        elif kind == "bert":
            other = other_head(config.get("architectures"))
            unread = {other[1]: other[2]} if other is not None else {}  # e.g. qa_outputs: an answer-span scorer
            model, weights = bert_checkpoint(config, without_other_classifier(config.get("architectures"), state))
            if model.head.name == "classification":
                classes = hf_class_names(config)
        elif kind == "vit":
            model = vit_config_to_xformer(config)
            weights = vit_state_dict_to_xformer(state, model.core.n_layers)
            unread = vit_unread(state)  # a ViTModel's pooler
            classes, normalisation = hf_class_names(config), vit_normalisation(folder)
        elif kind == "patchtst":
            model, weights = patchtst_checkpoint(config, state, source)
        elif kind is None and "pretrained_cfg" in config:  # timm's Hub layout (xformer export --format timm)
            raise ConfigError(f"{source}: {folder} is a timm folder (config.json without model_type), which xformer "
                              f"reads as init_from: timm:{Path(folder) / 'model.safetensors'}#"
                              f"{config.get('architecture', 'MODEL')}")
        else:
            raise ConfigError(f"{source}: model_type {kind!r} in config.json; xformer reads gpt2, bert, vit and "
                              "patchtst folders")
    except (KeyError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        what = f"the checkpoint has no tensor {e}" if isinstance(e, KeyError) else str(e)  # a ValueError's: whole
        raise ConfigError(f"{source}: {what}") from None
    check_weights_fit(source, model, weights, state)
    tokenizer, renamed = (None, {}) if kind in ("patchtst", "vit") else hf_tokenizer(folder, config)
    ids = max(tokenizer.get_vocab().values(), default=-1) + 1 if tokenizer is not None else 0
    if ids and ids > model.tokenizer.args["vocab_size"]:
        raise ConfigError(f"{source}: the folder's tokenizer has ids up to {ids - 1}, but the model's vocab_size "
                          f"(config.json) is {model.tokenizer.args['vocab_size']}: the tokenizer files are not this "
                          "model's; save its own tokenizer beside it (tokenizer.save_pretrained(FOLDER))")
    return Pretrained(source, kind, model, weights, tokenizer, renamed, classes, normalisation, architecture, unread)


def check_weights_fit(source: str, model: ModelConfig, weights: dict[str, Tensor], state: dict[str, Tensor]) -> None:
    """The weights must be those of the model config.json describes: a tensor of another shape, or more layers
    than it says (which would be dropped), means config.json is not theirs (edited, or copied from another model)."""
    import re

    import torch

    with torch.device("meta"):  # shapes only: nothing is allocated
        own = build_model(model).state_dict()
    fix = "config.json is not that of these weights; save the model and its config together (save_pretrained)"
    for key, tensor in weights.items():
        if key in own and own[key].shape != tensor.shape:
            raise ConfigError(f"{source}: config.json makes {key} {tuple(own[key].shape)}, but the weights hold "
                              f"{tuple(tensor.shape)}: {fix}")
    layers = {int(m[1]) for k in state if (m := re.search(r"(?:^|\.)(?:h|layer|layers)\.(\d+)\.", k))}
    if layers and max(layers) + 1 > model.core.n_layers:
        raise ConfigError(f"{source}: the weights hold {max(layers) + 1} layers, but config.json says "
                          f"{model.core.n_layers}: {fix}")


# ---------------------------------------------------------------- timm files


def load_timm(path: str | Path, name: str, extra: dict | None = None, source: str | None = None) -> Pretrained:
    """A timm ViT state dict created as ``name``, converted to xformer names (see timm_file.py, timm_vit.py); its
    class names from a timm Hub config.json beside it (``label_names``)."""
    from .timm_vit import hub_label_names, hub_normalisation

    path = Path(path)
    source = source or f"timm:{path}#{name}"
    if not path.is_file():
        raise ConfigError(f"init_from {source}: {path} is not a file; give a timm state dict (.safetensors or .pth)")
    model, weights = timm_checkpoint(read_weights_file(path), path, name, dict(extra or {}), source)
    return Pretrained(source, "timm", model, weights, class_names=hub_label_names(path),
                      normalisation=hub_normalisation(path))


def load_source(spec: str) -> Pretrained:
    """``hf:FOLDER`` or ``timm:FILE#MODEL[,k=v...]`` (see the module docstring)."""
    kind, path, name, kwargs = parse_source(spec)
    if kind == "hf":
        return load_hf(path, spec)
    return load_timm(path, name, kwargs, spec)


def pretrained_model(pre: Pretrained):
    """The Model (eval mode) of ``pre`` with its weights; ``model.untrained``: its head's parameters the checkpoint
    lacks (a ``BertModel``'s masked-LM head, read as its encoder), left at their random initial values."""
    from .hf_checkpoint import load_exactly

    model = build_model(pre.model)
    own = model.state_dict()
    load_exactly(model, {k: v for k, v in pre.weights.items() if k in own},
                 allow_missing=tuple(k for k in own if k.startswith("head.")))
    model.untrained = frozenset(k for k in own if k not in pre.weights)
    return model.eval()


def load_pretrained(source: str | Path):
    """(Model in eval mode with the checkpoint's own head, vocabulary or None) of ``hf:FOLDER``,
    ``timm:FILE#MODEL`` or a plain Hugging Face folder. A head the checkpoint lacks is left untrained: warned of,
    recorded as ``model.untrained`` (``pretrained_model``), refused where its output would be used."""
    import warnings

    spec = str(source)
    pre = load_source(spec if is_pretrained_source(spec) else f"hf:{spec}")
    model = pretrained_model(pre)
    if model.untrained:
        warnings.warn(untrained_line(model, pre.source, "so its logits are random (its hidden states are the "
                                     "checkpoint's)"), stacklevel=2)
    return model, pre.vocabulary()


# ---------------------------------------------------------------- a recipe started from a checkpoint


def resolve_model(recipe: ModelConfig, pre: Pretrained) -> ModelConfig:
    """The checkpoint's architecture, core and tokenizer with the recipe's head; refuses (one line) a recipe
    that contradicts the checkpoint where it matters."""
    import dataclasses

    from ..config import to_dict
    from ..core import CoreConfig

    src, ckpt = f"init_from {pre.source}", pre.model
    what = f"a {pre.kind} {ckpt.architecture}"
    if recipe.baseline is not None:
        raise ConfigError(f"{src}: the checkpoint is {what}, not the baseline {recipe.baseline.name}; "
                          "remove model.baseline")
    if recipe.architecture != ckpt.architecture:
        raise ConfigError(f"{src}: the checkpoint is {what} but model.architecture is {recipe.architecture!r}; "
                          f"set model.architecture={ckpt.architecture}")
    if recipe.head.name not in HEADS[pre.kind]:
        raise ConfigError(f"{src}: model.head {recipe.head.name!r} does not fit {what}; use one of "
                          f"{', '.join(HEADS[pre.kind])}")
    # a core key the recipe sets (to other than its default) must be the checkpoint's; dropout and init are the recipe's
    ours, theirs, default = to_dict(recipe.core), to_dict(ckpt.core), to_dict(CoreConfig())
    for key, value in theirs.items():
        if key not in FREE_CORE_KEYS + ADJUSTABLE_CORE_KEYS and ours[key] != default[key] and ours[key] != value:
            raise ConfigError(f"{src}: model.core.{key} is {ours[key]!r} here but {value!r} in the checkpoint; "
                              "remove it from the recipe (the core comes from the checkpoint)")
    adjusted = {k: ours[k] for k in ADJUSTABLE_CORE_KEYS if ours[k] != default[k]}
    core = dataclasses.replace(ckpt.core, **{k: ours[k] for k in FREE_CORE_KEYS}, **adjusted)
    tok_args = dict(ckpt.tokenizer.args)
    if "norm_eps" in adjusted and "norm_eps" in tok_args:  # BERT's embedding LayerNorm: one eps, as layer_norm_eps
        tok_args["norm_eps"] = adjusted["norm_eps"]
    if pre.kind == "patchtst":  # no weight depends on the number of series (shared embedding and head): the data's
        del tok_args["n_channels"]
    if "dropout" in tok_args:  # as the core's: the recipe's, else none
        tok_args["dropout"] = recipe.tokenizer.args.get("dropout", 0.0)
    if recipe.tokenizer.name == ckpt.tokenizer.name:
        for key, value in recipe.tokenizer.args.items():
            theirs = tok_args.get(key)
            same = value == theirs or isinstance(theirs, list) and [value] * len(theirs) == theirs  # 2 = [2, 2]
            if key not in tok_args:
                tok_args[key] = value
            elif not same:
                raise ConfigError(f"{src}: model.tokenizer.args.{key} is {value!r} here but {tok_args[key]!r} in "
                                  "the checkpoint; remove it from the recipe")
    elif recipe.tokenizer != ModelConfig().tokenizer:
        raise ConfigError(f"{src}: model.tokenizer {recipe.tokenizer.name!r} is not the checkpoint's "
                          f"{ckpt.tokenizer.name!r}; remove model.tokenizer from the recipe")
    head_args = dict(recipe.head.args)
    if same_head(recipe.head.name, ckpt.head.name):  # e.g. timm's pooling and fc_norm; the data gives n_classes
        head_args = {**{k: v for k, v in ckpt.head.args.items() if k != "n_classes"}, **head_args}
    elif recipe.head.name == "classification" and "head.pooler.weight" in pre.weights:
        head_args.setdefault("pooler", True)  # BERT's classifier reads its pre-trained pooler (hf_bert.py)
    return ModelConfig(ckpt.architecture, core, dataclasses.replace(ckpt.tokenizer, args=tok_args),
                       dataclasses.replace(recipe.head, args=head_args))


def check_data_fits(pre: Pretrained, model: ModelConfig, implied: dict) -> None:
    """The data must fit the checkpoint's tokenizer: its vocabulary and lengths within the checkpoint's,
    its images of the checkpoint's size and channels."""
    src, args, given = f"init_from {pre.source}", model.tokenizer.args, implied.get("tokenizer", {})
    if pre.kind == "patchtst":  # its windows' length and horizon; any number of series (hf_patchtst.py)
        from .hf_patchtst import check_series_fits

        return check_series_fits(pre.source, pre.model, implied)
    if pre.kind in IMAGE_KINDS and "image_size" not in given:
        raise ConfigError(f"{src}: a {'timm ' if pre.kind == 'timm' else ''}ViT reads images; use an image dataset "
                          "(digits, image_folder, ...)")
    for key, value in given.items():
        if key not in args or key == "pad_id":
            continue
        if key in ("vocab_size", "max_positions"):
            if value > args[key]:
                fix = ("lower data.args.block_size / max_length" if key == "max_positions"
                       else "the data must use the checkpoint's tokenizer")
                raise ConfigError(f"{src}: the data needs {key}={value}, beyond the checkpoint's {args[key]}; {fix}")
        else:
            ours, theirs = (list(v) if isinstance(v, (list, tuple)) else v for v in (value, args[key]))
            fix = f"set data.args.{key} to the checkpoint's"
            if key == "channels":  # only an image_folder takes it
                fix = (f"give {args[key]}-channel images: data.args.channels={args[key]} for an image_folder "
                       "(digits, MNIST and Fashion-MNIST are grey, CIFAR-10 is colour)")
            if ours != theirs:
                raise ConfigError(f"{src}: the data gives {key}={value} but the checkpoint reads {key}={args[key]}; "
                                  f"{fix}")


__all__ = ["Pretrained", "is_pretrained_source", "parse_source", "read_hf_folder", "folder_tokenizer", "hf_tokenizer",
           "load_hf", "check_weights_fit", "load_timm", "load_source", "pretrained_model", "load_pretrained",
           "resolve_model", "check_data_fits"]
