"""Starting a fresh run from pre-trained weights (a recipe's ``init_from``).

A run folder's weights (``init_from_pretrained``) are copied by name where the shapes agree, so a new head stays
freshly initialised; a classifier's rows follow the class names (``match_classes``: the pre-trained run's
classes.json against this data's); a learned 2-D grid of image positions trained at another image size is
resampled to this model's grid (``resampled_grid``). ``hf:FOLDER`` / ``timm:FILE#MODEL``
(xformer/interop/pretrained.py) first replace the recipe's architecture, core and tokenizer by the checkpoint's
(``start_from_source``), and a Hugging Face text folder's tokenizer becomes the data's (``data.args.tokenizer``,
saved as RUN_DIR/tokenizer like any other run's; a PatchTST forecaster has none), an image model's mean / std
(its image processor, timm's pretrained_cfg) the data's ``mean`` / ``std`` unless the recipe gives them.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import torch

from ..config import ConfigError, load_yaml, to_dict
from ..data.registry import DataBundle
from ..data.vocab import without_learning_args
from ..interop.pretrained import IMAGE_KINDS, Pretrained, resolve_model
from ..models import Model, ModelConfig, module_names, same_head
from ..tokenizers.image import interpolate_grid_positions
from .checkpoint import POINTER, checkpoint_dir, read_eval_weights, tied_aliases
from .config import ExperimentConfig
from .distill import image_input
from .implied_args import height_width
from .same_data import data_vocabulary, run_record, saved_by_data, vocabulary_of


def start_from_source(config: ExperimentConfig, source: Pretrained, vocab_dir: Path) -> ExperimentConfig:
    """``config`` with the checkpoint's model (the recipe's head) and, for a Hugging Face folder, its
    tokenizer saved in ``vocab_dir`` as the data's ``tokenizer``; refused in one line where they cannot fit."""
    import inspect

    from ..data.registry import DATASETS
    from ..registry import import_all_submodules

    config = copy.deepcopy(config)
    model = resolve_model(config.model, source)
    import_all_submodules("xformer.data")
    takes = inspect.signature(DATASETS.lookup(config.data.name)).parameters
    if source.kind in IMAGE_KINDS and "image_size" not in takes:
        raise ConfigError(f"init_from {source.source}: a {'timm ' if source.kind == 'timm' else ''}ViT reads images, "
                          f"data {config.data.name!r} gives none; use an image dataset (digits, image_folder, ...)")
    if source.kind in IMAGE_KINDS:
        model = at_data_image_size(model, config.data.args, source.source)
    channels = config.data.args.get("channels", takes["channels"].default if "channels" in takes else None)
    if (source.normalisation is not None and "mean" in takes and not {"mean", "std"} & set(config.data.args)
            and channels in (None, len(source.normalisation["mean"]))):  # else check_data_fits names the channels
        config.data.args.update(source.normalisation)  # the statistics the checkpoint was trained with
    if source.kind == "patchtst" and "horizon" not in takes:
        raise ConfigError(f"init_from {source.source}: a PatchTST forecaster reads series windows, data "
                          f"{config.data.name!r} gives none; use a forecasting dataset (csv_series, ett)")
    if source.kind in ("gpt2", "bert"):  # a text checkpoint's vocabulary becomes the data's
        if "tokenizer" not in takes:
            raise ConfigError(f"init_from {source.source}: data {config.data.name!r} has no tokenizer argument to "
                              "give the checkpoint's vocabulary to; use a text dataset (text_lm, text_classification, "
                              "text_mlm)")
        if source.tokenizer is None:
            raise ConfigError(f"init_from {source.source}: the folder holds no tokenizer (tokenizer.json, vocab.json + "
                              "merges.txt, or vocab.txt); save it beside the model: tokenizer.save_pretrained(folder)")
        (exported_char_vocab(source) or source.vocabulary()).save(vocab_dir)
        config.data.args = without_learning_args(config.data.args, vocab_dir)  # the checkpoint's, learned
    return dataclasses.replace(config, model=model)


def at_data_image_size(model: ModelConfig, data_args: dict, source: str) -> ModelConfig:
    """A ViT checkpoint's model at the image size of the data, as timm's ``create_model(name, pretrained=True,
    img_size=384)`` builds a 224 checkpoint for 384 images: without ``data.args.image_size`` the images are
    resized to the checkpoint's size (set in ``data_args``, as timm's data config follows the model's); with
    another one the model reads that size and its learned positions are resampled to the new grid when the
    weights are copied (``resampled_grid``). The size must be a multiple of the patch size."""
    theirs = model.tokenizer.args.get("image_size")
    if theirs is None:
        return model
    if data_args.get("image_size") is None:
        data_args["image_size"] = list(theirs) if isinstance(theirs, (list, tuple)) else theirs
        return model
    size, patch = height_width(data_args["image_size"]), height_width(model.tokenizer.args.get("patch_size", 16))
    if any(side % step for side, step in zip(size, patch)):
        fit = [max(step, round(side / step) * step) for side, step in zip(size, patch)]
        raise ConfigError(f"init_from {source}: data.args.image_size={data_args['image_size']} is not a multiple of "
                          f"the checkpoint's patch size {list(patch)}; give one that is, e.g. data.args.image_size="
                          f"[{fit[0]},{fit[1]}], or leave it out (the checkpoint's {theirs})")
    args = {**model.tokenizer.args, "image_size": list(size)}
    return dataclasses.replace(model, tokenizer=dataclasses.replace(model.tokenizer, args=args))


def exported_char_vocab(source: Pretrained):
    """The character vocabulary of a folder ``xformer export --format hf`` wrote from a character-level run (its
    xformer_tokenizer.json, the same table as its tokenizer.json), so that the run fine-tuned from it reads
    characters again (a word-piece vocabulary of them would want the [EOS] text_lm puts between paragraphs);
    None for any other folder."""
    from ..data.vocab import META_FILE, CharVocab, load_vocab

    folder = Path(source.source[len("hf:"):]) if source.source.startswith("hf:") else None
    if folder is None or not (folder / META_FILE).is_file():
        return None
    try:
        vocab = load_vocab(folder)
    except ConfigError:
        return None
    same = isinstance(vocab, CharVocab) and vocab.stoi == source.tokenizer.get_vocab()
    return vocab if same else None


# ---- init_from: fine-tuning from a pre-trained run ----------------------------------------------------------
# free to differ when fine-tuning
UNTIED_CORE_KEYS = ("dropout", "attn_dropout", "attn_proj_dropout", "drop_path", "init")


def pretrained_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """(checkpoint folder, run folder or None) of ``init_from``: a run, its checkpoints/ or one checkpoint."""
    path = Path(path)
    for root in (path / "checkpoints", path):
        if (root / POINTER).is_file():
            ckpt = checkpoint_dir(root, "best")
            return ckpt, root.parent
    if (path / "config.json").is_file() and not (path / "state.json").is_file():  # save_pretrained's, an export's
        raise ConfigError(f"init_from {path}: a Hugging Face folder (config.json), not an xformer run; give it as "
                          f"hf:{path}")
    if (path / "model.safetensors").is_file():
        run = path.parent.parent if path.parent.name == "checkpoints" else None
        return path, run
    if path.is_file():  # a weights file: a timm state dict needs its prefix and model name
        raise ConfigError(f"init_from {path}: a file, not a run folder; give the run (or checkpoint) folder, or a "
                          f"timm state dict as timm:{path}#MODEL, e.g. timm:{path}#vit_tiny_patch16_224")
    raise ConfigError(f"init_from {path}: not a run folder, a checkpoints/ folder or a checkpoint folder "
                      "(model.safetensors); give a finished run, e.g. init_from: runs/bert_mlm")


def _model_kind(model: dict) -> str:
    """A config.yaml ``model`` section (or a ModelConfig's dict) in words: its baseline, or a transformer."""
    if model.get("baseline"):
        return f"the {model['baseline'].get('name')} baseline"
    return f"a transformer ({model.get('architecture', 'decoder')})"


def _check_same_model(config: ExperimentConfig, run: Path) -> None:
    """The pre-trained run's model must be this one's kind: the same baseline, or a transformer of the same
    architecture and core (its config.yaml)."""
    if not (run / "config.yaml").is_file():
        return
    theirs = load_yaml(run / "config.yaml").get("model") or {}
    ours_model = to_dict(config.model)
    their_baseline = (theirs.get("baseline") or {}).get("name")
    our_baseline = config.model.baseline.name if config.model.baseline is not None else None
    if their_baseline != our_baseline:
        raise ConfigError(f"init_from {run}: the models differ: the pre-trained run is {_model_kind(theirs)}, this "
                          f"one {_model_kind(ours_model)}; start from a run of this recipe's model")
    if our_baseline is not None:
        return  # a baseline has no architecture or core: its tensors' names and shapes decide below
    if theirs.get("architecture", config.model.architecture) != config.model.architecture:
        raise ConfigError(f"init_from {run}: model.architecture is {theirs['architecture']!r} in the pre-trained "
                          f"run but {config.model.architecture!r} here; use the pre-trained run's")
    ours = to_dict(config.model.core)
    for key, value in theirs.get("core", {}).items():
        if key in ours and key not in UNTIED_CORE_KEYS and ours[key] != value:
            raise ConfigError(f"init_from {run}: model.core.{key} is {value!r} in the pre-trained run but "
                              f"{ours[key]!r} here; use the pre-trained run's model.core (its config.yaml)")


def _check_same_vocabulary(data: DataBundle, run: Path) -> None:
    """The ids must mean the same pieces: compare the vocabulary this data saves with RUN/tokenizer."""
    theirs = vocabulary_of(run / "tokenizer")
    if data.save is None or not theirs:
        return
    ours = data_vocabulary(data)
    if any(ours.get(name) != contents for name, contents in theirs.items()):
        raise ConfigError(f"init_from {run}: this run's vocabulary differs from the pre-trained one; "
                          f"pass data.args.tokenizer={run / 'tokenizer'}")


def _length_keys(data_name: str) -> str:
    """The data arguments of ``data_name`` that set how many tokens a model reads (its positions), as the end of a
    hint: " and data.args.input_len" for a series, max_length / block_size for text; "" when it takes none."""
    import inspect

    from ..data.registry import DATASETS
    from ..registry import import_all_submodules

    import_all_submodules("xformer.data")
    try:
        takes = inspect.signature(DATASETS.lookup(data_name)).parameters
    except (ConfigError, KeyError, ValueError):
        return ""
    keys = [f"data.args.{key}" for key in ("input_len", "max_length", "block_size", "length") if key in takes]
    return f" and {' / '.join(keys)}" if keys else ""


def _other_length(config: ExperimentConfig, run: Path | None) -> tuple[str, object, object] | None:
    """(key, the pre-trained run's value, this recipe's) of the first data argument that sets how many tokens a
    model reads (``_length_keys``) and that both recipes give, differently; else of the tokenizer's input_len that
    the data filled in (a series classifier reads its series' own length); None when none differs."""
    if run is None or not (run / "config.yaml").is_file():
        return None
    recorded = load_yaml(run / "config.yaml")
    theirs = (recorded.get("data") or {}).get("args") or {}
    ours = config.data.args
    given = next(((f"data.args.{key}", theirs[key], ours[key]) for key in ("input_len", "max_length", "block_size",
                                                                         "length")
                  if key in theirs and key in ours and theirs[key] != ours[key]), None)
    if given is not None:
        return given
    # series classification: the length is the data's own, recorded in the tokenizer's args the data filled in
    theirs = (((recorded.get("model") or {}).get("tokenizer") or {}).get("args") or {}).get("input_len")
    ours = (config.model.tokenizer.args if config.model.tokenizer is not None else {}).get("input_len")
    return ("model.tokenizer.args.input_len", theirs, ours) if None not in (theirs, ours) and theirs != ours else None


def resampled_grid(model: Model, name: str, table: torch.Tensor, their_model: dict | None
                    ) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]] | None:
    """(the positions, their grid, this model's grid) when ``name`` is an image tokenizer's learned grid of
    positions (``pos_grid``, rows * cols x d) that the checkpoint holds for another grid: its table resampled
    bicubically to this model's grid, as timm's ``resample_abs_pos_embed`` (and the tokenizer itself, for images
    of another size) does. The class and register tokens' positions are kept apart (``pos_prefix``) and copied as
    they are. The checkpoint's grid comes from the image size of ``their_model`` (its run's config.yaml ``model``,
    a Hugging Face or timm checkpoint's model), else it must be square; None when it cannot be resampled."""
    if not name.endswith(".pos_grid") or table.dim() != 2:
        return None
    module = model.get_submodule(name.rsplit(".", 1)[0])
    ours, own = getattr(module, "grid", None), module.state_dict().get("pos_grid")
    if ours is None or own is None or table.shape[1] != own.shape[1]:
        return None
    theirs, size = None, image_input(their_model or {})  # (C, H, W) it was trained on
    if size is not None:
        try:
            theirs = tuple(module._grid_for(size[1], size[2]))
        except ValueError:  # their images do not tile this tokenizer: the squareness below decides
            theirs = None
    if theirs is None or theirs[0] * theirs[1] != table.shape[0]:
        side = math.isqrt(table.shape[0])
        theirs = (side, side) if side * side == table.shape[0] else None
    if theirs is None:
        return None
    return interpolate_grid_positions(table, theirs, tuple(ours)), theirs, tuple(ours)


def class_rows(model: torch.nn.Module, n_classes: int) -> list[str]:
    """The tensors whose rows are the classes: the logits layer, named ``fc`` by every classifier (a
    classification head's ``head.fc``, an image baseline's ``fc``) with one output per class."""
    return [f"{name}.{kind}" for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] == "fc" and isinstance(module, torch.nn.Linear)
            and module.out_features == n_classes for kind in ("weight", "bias") if getattr(module, kind) is not None]


def run_class_names(run: Path | None) -> list | None:
    """A pre-trained run's classes in the order of its logits (its classes.json), or None."""
    if run is None or not (run / "classes.json").is_file():
        return None
    return run_record(run / "classes.json", "class_names", list) or None


def match_classes(model: torch.nn.Module, weights: dict[str, torch.Tensor], theirs: list | None,
                  data: DataBundle | None, whose: str = "the pre-trained run's") -> tuple[dict[str, torch.Tensor], str]:
    """(``weights`` with the classifier's rows in this data's class order, what was done in words).

    Row k of a logits layer scores the checkpoint's class k (``theirs``: a run's classes.json, a Hugging Face
    classifier's id2label, a timm file's label_names): copied onto data whose classes are other names, or the
    same in another order, it would score the wrong class. The same names in another order have their rows
    permuted, W'[k] = W[theirs.index(ours[k])] (biases alike); other names leave the classifier out, to start
    fresh as for another number of classes."""
    saved = saved_by_data(data, ("classes.json",)) if data is not None else {}
    ours = saved.get("classes.json", {}).get("class_names")
    if ours is None or theirs is None:
        return weights, ""
    rows = [name for name in class_rows(model, len(ours)) if name in weights]
    if theirs == ours or not rows:
        return weights, ""
    layers = ", ".join(dict.fromkeys(name.rsplit(".", 1)[0] for name in rows))
    if sorted(theirs) == sorted(ours) and len(set(ours)) == len(ours):
        order = torch.tensor([theirs.index(name) for name in ours])
        return ({**weights, **{name: weights[name][order] for name in rows}},
                f"; {layers} rows reordered from {whose} class order to this data's")
    return ({name: tensor for name, tensor in weights.items() if name not in rows},
            f"; {layers} left fresh as {whose} classes {theirs} are not this data's {ours}")


def init_from_pretrained(model: Model, config: ExperimentConfig, data: DataBundle,
                         source: Pretrained | None = None) -> str:
    """Copy the pre-trained tensors whose name and shape match into ``model``; return a one-line summary.
    ``source``: the checkpoint of ``hf:`` / ``timm:`` (``load_source``), whose model ``model`` already is;
    its head weights are used only for a head of the same name (or masked_lm for masked_lm_nsp: ``same_head``), and
    every tokenizer / core tensor must come.
    ``model.untrained`` becomes the names of the tensors no checkpoint tensor filled (training trains them).

    A learned grid of image positions trained at another image size is resampled (``resampled_grid``).
    Raises ConfigError when the pre-trained run has another architecture, core or vocabulary,
    when any other tokenizer / core tensor has another shape, or when no core tensor matches.
    """
    run = None
    if source is not None:
        ckpt = source.source
        same = same_head(model.config.head.name, source.model.head.name)
        # BERT's pooler serves a classification head as it served next-sentence prediction (Hugging Face's
        # BertForSequenceClassification starts from it)
        weights = {k: v for k, v in source.weights.items()
                   if same or not k.startswith("head.") or k.startswith("head.pooler.")}
        lacking = [k for k in model.state_dict() if k.startswith(("tokenizer.", "core.")) and k not in weights]
        if lacking:
            raise ConfigError(f"init_from {ckpt}: the checkpoint has no weights for {', '.join(lacking[:3])}")
    else:
        ckpt, run = pretrained_checkpoint(config.init_from)
        if run is not None:
            _check_same_model(config, run)
            _check_same_vocabulary(data, run)
        weights = read_eval_weights(ckpt)  # the weights its metrics describe: the EMA when it kept one
    read_names = list(weights)
    theirs = run_class_names(run) if source is None else source.class_names
    weights, classes_note = match_classes(model, weights, theirs, data,
                                          "the pre-trained run's" if source is None else "the checkpoint's")
    offered = set(source.weights if source is not None else read_names)
    aliases = tied_aliases(model)  # a tied copy (e.g. an MLM decoder) follows its embedding
    own = {name: t for name, t in model.state_dict().items() if name not in aliases}
    copied, fresh, resampled, mismatched = [], [], [], []
    images = image_input(to_dict(config.model)) is not None  # config: resolved (a baseline's model has none)
    their_model = to_dict(source.model) if source is not None else \
        load_yaml(run / "config.yaml").get("model") if run is not None and (run / "config.yaml").is_file() else None
    for name, tensor in own.items():
        grid = resampled_grid(model, name, weights[name], their_model) \
            if name in weights and weights[name].shape != tensor.shape else None
        if grid is not None:
            weights = {**weights, name: grid[0]}
            resampled.append(f"{name} from {grid[1][0]}x{grid[1][1]} to {grid[2][0]}x{grid[2][1]} cells")
        if name not in weights:
            fresh.append(name)
        elif weights[name].shape == tensor.shape:
            copied.append(name)
        elif name.startswith(("tokenizer.", "core.")):
            if name.endswith("embed.weight") and not images:
                hint = "the vocabularies differ: pass the pre-trained run's tokenizer folder as data.args.tokenizer"
            elif name.endswith(".pos_grid"):
                hint = ("its grid of positions is not square and no config.yaml beside the checkpoint names its image "
                        "size; give the run folder as init_from, or the pre-trained run's data.args.image_size")
            elif images:
                hint = ("use the pre-trained run's model.tokenizer (patch_size, ...), model.core and "
                        "data.args.channels (its config.yaml); data.args.image_size may differ (learned positions "
                        "are resampled)")
            elif "positions" in name and (length := _other_length(config, run)) is not None:
                key, theirs, ours = length
                fix = f"give {key}={theirs}" if key.startswith("data.") else \
                    f"give series of {theirs} steps (this data's series have {ours}; its data fills {key})"
                hint = (f"the pre-trained run read {key} {theirs}, this recipe's {ours} (learned positions, "
                        f"one per token, do not carry to another length); {fix}, or start from a run trained at {ours}")
            else:
                hint = (f"use the pre-trained run's model.tokenizer / model.core settings"
                        f"{_length_keys(config.data.name)} (its config.yaml)")
            raise ConfigError(f"init_from {ckpt}: {name} is {tuple(weights[name].shape)} there but "
                              f"{tuple(tensor.shape)} in this model; {hint}")
        else:
            fresh.append(name)  # a head of another shape (e.g. another number of classes) starts fresh
            mismatched.append(name)
    if config.model.baseline is not None and not copied:
        example = f" ({mismatched[0]} is {tuple(weights[mismatched[0]].shape)} there but " \
                  f"{tuple(own[mismatched[0]].shape)} here)" if mismatched else ""
        raise ConfigError(f"init_from {ckpt}: none of this {config.model.baseline.name} baseline's {len(own)} tensors "
                          f"matches the checkpoint's{example}; use the pre-trained run's model.baseline.args and "
                          "data.args (its config.yaml: input_len, horizon, columns...)")
    core = [name for name in own if name.startswith("core.")]
    if core and not any(name.startswith("core.") for name in copied):
        raise ConfigError(f"init_from {ckpt}: none of this model's {len(core)} core tensors is in the checkpoint "
                          f"(e.g. {core[0]}); it holds another architecture")
    with torch.no_grad():
        model.load_state_dict({name: weights[name] for name in copied}, strict=False)
    model.untrained = frozenset(fresh)
    unused = sorted(offered - set(copied) - aliases)  # a tied copy came with its embedding
    unread = "".join(f"; not read: {layer} ({source.architecture}'s {what}, which no xformer head is)"
                     for layer, what in (source.unread if source is not None else {}).items())
    if source is not None and model.config.core.norm_eps != source.model.core.norm_eps:
        unread += f"; LayerNorm eps {model.config.core.norm_eps:g} (the recipe's) instead of the checkpoint's " \
                  f"{source.model.core.norm_eps:g}"
    return (f"init_from {ckpt}: loaded {len(copied)} of {len(own)} tensors; left fresh: {module_names(fresh, own)}; "
            f"not used from the checkpoint: {module_names(unused, offered)}{unread}"
            + "".join(f"; resampled {what} (bicubic)" for what in resampled) + classes_note)


__all__ = ["start_from_source", "pretrained_checkpoint", "resampled_grid", "class_rows", "run_class_names",
           "match_classes",
           "init_from_pretrained"]
