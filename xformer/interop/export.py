"""A model out to another library's format: a Hugging Face folder, a timm checkpoint, an ONNX graph.

    export_model(model, "hf", folder)     GPT-2-shaped decoders -> GPT2LMHeadModel, BERT encoders -> BertFor*,
                                          ViT classifiers -> ViTForImageClassification
                                          (a run fine-tuned from hf:FOLDER: FOLDER's special-token names)
    export_model(model, "timm", folder)   ViT classifiers -> timm VisionTransformer (config.json + model.safetensors)
    export_model(model, "onnx", folder)   every transformer run -> model.onnx, checked against PyTorch (onnx_export.py)

Each format first checks that it can express the model (``check_exportable``): what it cannot is
refused in one line naming the feature, before anything is written. Bias-free layers are exported
as zero biases (the same function). ``xformer export`` (commands/export.py) adds the run folder,
the checkpoint choice and the output folder rules.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..class_names import read_class_names
from ..errors import ConfigError
from ..models import check_trained
from .hf_source import kept_hf_source
from .support import CannotExport, describe, need

FORMATS = ("hf", "timm", "onnx")
TIMM_EPS = 1e-6  # timm's VisionTransformer: partial(nn.LayerNorm, eps=1e-6)


# ---------------------------------------------------------------- Hugging Face


def hf_kind(config) -> str:
    """'gpt2', 'bert' or 'vit': the Hugging Face model family of ``config``, or CannotExport."""
    if config.baseline is None and config.architecture == "decoder" and config.tokenizer.name == "text":
        return "gpt2"
    if _is_vit(config):
        return "vit"
    if config.baseline is None and config.architecture == "encoder" and config.tokenizer.name == "bert_text":
        if config.head.name in ("masked_lm", "masked_lm_nsp", "classification"):
            return "bert"
        raise CannotExport(f"cannot export to Hugging Face: the {config.head.name} head has no BERT class here "
                           "(--format hf covers BERT with the masked_lm / masked_lm_nsp / classification heads); "
                           "use --format onnx")
    raise CannotExport(f"cannot export to Hugging Face: the model is {describe(config)}; --format hf covers "
                       "GPT-2 (decoder, text tokenizer, causal_lm head), BERT (encoder, bert_text tokenizer, "
                       "masked_lm or classification head) and ViT (encoder, image_patches tokenizer, classification "
                       "head); use --format onnx")


def _check_hf(model) -> None:
    kind = hf_kind(model.config)
    from .hf_bert import xformer_config_to_bert
    from .hf_gpt2 import xformer_config_to_gpt2
    from .hf_vit import xformer_config_to_vit

    try:
        {"gpt2": xformer_config_to_gpt2, "bert": xformer_config_to_bert, "vit": xformer_config_to_vit}[kind](
            model.config)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise CannotExport(f"{e}; use --format onnx") from None


def _vocabulary(tokenizer_dir: Path | None):
    from ..data.vocab import META_FILE, load_vocab

    if tokenizer_dir is None or not (tokenizer_dir / META_FILE).is_file():
        return None
    return load_vocab(tokenizer_dir)


def _source_folder(run: Path | None) -> Path | None:
    """The Hugging Face folder a run started from (config.yaml's ``init_from: hf:FOLDER``, also through runs
    that started from runs): the copy kept in that run (interop/hf_source.py), else the folder if still there."""
    import yaml

    seen: set[Path] = set()
    while run is not None and run.resolve() not in seen:
        seen.add(run.resolve())
        try:
            spec = (yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}).get("init_from")
            if not isinstance(spec, str) or not spec or spec.startswith("timm:"):
                return None
            if spec.startswith("hf:"):  # the copy the run kept, else the folder itself if still there
                return kept_hf_source(run) or (Path(spec[3:]) if (Path(spec[3:]) / "config.json").is_file() else None)
            path = Path(spec)  # init_from: RUN, RUN/checkpoints or RUN/checkpoints/step_N
            run = next((p for p in (path, path.parent, path.parent.parent) if (p / "config.yaml").is_file()), None)
        except (OSError, ValueError, AttributeError, yaml.YAMLError):  # ConfigError is a ValueError
            return None
    return None


def source_names(run: Path | None, vocab) -> tuple[Path, dict, dict[str, str]] | None:
    """(folder, its config.json, xformer name -> the folder's name) when the run's vocabulary is the tokenizer of
    the Hugging Face folder it started from (the same tokens at the same ids but for special tokens the import
    renamed, e.g. GPT-2's <|endoftext|> = [EOS]); None when there is no such folder or the vocabulary differs."""
    from .pretrained import _special_tokens, folder_tokenizer

    folder = _source_folder(run)
    if folder is None or getattr(vocab, "tokenizer", None) is None:
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        theirs = folder_tokenizer(folder)
    except Exception:  # noqa: BLE001 - an unreadable source: the run's own names stay
        return None
    if not isinstance(config, dict) or theirs is None:
        return None
    renamed = {}
    for token in _special_tokens(folder, config, theirs).values():
        index = theirs.token_to_id(token)
        ours = vocab.tokenizer.id_to_token(index) if index is not None else None
        if ours != token and ours in vocab.specials:
            renamed[ours] = token
    mine = {renamed.get(token, token): index for token, index in vocab.tokenizer.get_vocab().items()}
    return (folder, config, renamed) if mine == theirs.get_vocab() else None


def export_hf(model, folder: Path, tokenizer_dir: Path | None = None, run: Path | None = None) -> dict:
    """config.json + model.safetensors that ``GPT2LMHeadModel`` / ``BertForMaskedLM`` / ``BertForPreTraining`` /
    ``BertForSequenceClassification.from_pretrained(folder)`` loads (a classifier's id2label: the run's classes),
    plus the run's tokenizer files when given, so that ``AutoTokenizer.from_pretrained(folder)`` gives the run's
    ids. A run fine-tuned from a Hugging Face folder (``run``'s init_from, when the folder is still there and its
    vocabulary is the run's) gets the folder's special-token names back (GPT-2's <|endoftext|>, not the run's
    [EOS]), its tokenizer_config.json / special_tokens_map.json and its config's bos/eos/pad ids; otherwise a
    tokenizer_config.json is written and GPT-2's bos/eos/pad ids are the vocabulary's [BOS] / [EOS] / [PAD]."""
    from .hf_bert import to_hf_bert
    from .hf_gpt2 import to_hf_gpt2
    from .hf_tokenizer_files import add_bert_template, write_char_tokenizer
    from .pretrained import _rename

    kind = hf_kind(model.config)
    names = _class_names(model, run)  # a classifier names its logits (id2label), as the run's classes.json does
    labels = {"id2label": dict(enumerate(map(str, names))), "label2id": {str(n): i for i, n in enumerate(names)}} \
        if names else {}
    if kind == "vit":  # images: no tokenizer; the image processor repeats the run's evaluation transform
        from .hf_vit import save_vit

        save_vit(model, folder, _run_preprocess(run), **labels)
        return {"class": "ViTForImageClassification", "files": sorted(f.name for f in folder.iterdir())}
    vocab = _vocabulary(tokenizer_dir)
    source = source_names(run, vocab) if vocab is not None else None
    ids = {f"{role}_token_id": getattr(vocab, f"{role}_id", None) for role in ("bos", "eos", "pad")}
    # a vocabulary without [BOS] / [EOS] has none: GPT-2's convention of the last id would name one of its
    # tokens (a character vocabulary's last character), where Hugging Face's generate would stop
    ids = {k: v for k, v in ids.items() if v is not None or (vocab is not None and k != "pad_token_id")}
    if source is not None:
        ids = {k: source[1][k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in source[1]}
    hf = to_hf_gpt2(model, **ids) if kind == "gpt2" else to_hf_bert(model, **labels)
    progress = need("transformers.utils.logging", "--format hf")
    shown = progress.is_progress_bar_enabled()
    progress.disable_progress_bar()  # its one-shard bar is noise on stderr
    try:
        hf.save_pretrained(folder)
    finally:
        if shown:
            progress.enable_progress_bar()
    copied, report = [], {}
    if source is not None:  # the source folder's tokenizer settings, its token names
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if (source[0] / name).is_file() and not (folder / name).exists():
                shutil.copy2(source[0] / name, folder / name)
                copied.append(name)
        report["special_tokens_from"] = str(source[0])
    if tokenizer_dir is not None and tokenizer_dir.is_dir():
        for f in sorted(tokenizer_dir.iterdir()):
            if not f.is_file() or (folder / f.name).exists():
                continue
            if source is not None and source[2] and f.name == "tokenizer.json":
                tree = json.loads(f.read_text(encoding="utf-8"))
                for ours, theirs in source[2].items():  # the import's renaming (pretrained.py), undone
                    tree = _rename(tree, ours, theirs)
                (folder / f.name).write_text(json.dumps(tree, ensure_ascii=False), encoding="utf-8")
            elif source is not None and source[2] and f.name == "vocab.txt":
                lines = f.read_text(encoding="utf-8").split("\n")
                (folder / f.name).write_text("\n".join(source[2].get(t, t) for t in lines), encoding="utf-8")
            else:
                shutil.copy2(f, folder / f.name)
            copied.append(f.name)
    if kind == "bert" and (folder / "tokenizer.json").is_file():
        add_bert_template(folder / "tokenizer.json")
    if getattr(vocab, "kind", None) == "char" and not (folder / "tokenizer.json").exists():
        write_char_tokenizer(vocab, folder / "tokenizer.json")
        copied.append("tokenizer.json")
    if vocab is not None and (folder / "tokenizer.json").is_file() and not (folder / "tokenizer_config.json").exists():
        tokens = {f"{role}_token": tok for role, tok in (("pad", "[PAD]"), ("unk", "[UNK]"), ("cls", "[CLS]"),
                                                         ("sep", "[SEP]"), ("mask", "[MASK]"), ("bos", "[BOS]"),
                                                         ("eos", "[EOS]")) if tok in vocab.specials}
        config = {"tokenizer_class": "PreTrainedTokenizerFast", **tokens,
                  "model_max_length": model.config.tokenizer.args.get("max_positions", 512)}
        if kind == "bert":  # sentence pairs: BERT reads token_type_ids
            config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        copied.append("tokenizer_config.json")
    return {"class": type(hf).__name__, "tokenizer_files": copied, **report}


# ---------------------------------------------------------------- timm


def _is_vit(config) -> bool:
    return (config.baseline is None and config.architecture == "encoder" and config.tokenizer.name == "image_patches"
            and config.head.name == "classification")


def timm_model_args(config) -> dict:
    """The keyword arguments of timm's ``VisionTransformer`` for the same network, or CannotExport."""
    if not _is_vit(config):
        raise CannotExport(f"cannot export to timm: the model is {describe(config)}; --format timm covers ViT "
                           "classifiers (encoder, image_patches tokenizer, classification head); use --format onnx")
    core, tok, head = config.core, config.tokenizer.args, config.head.args
    positions = tok.get("positions", "learned")
    checks = [
        (core.norm == "layernorm" and core.norm_first, f"{core.norm} {'pre' if core.norm_first else 'post'}-norm "
                                                       "blocks (timm's ViT has pre-LayerNorm blocks)"),
        (core.norm_eps == TIMM_EPS, f"LayerNorm eps {core.norm_eps:g} (timm's ViT uses {TIMM_EPS:g}; train with "
                                    f"model.core.norm_eps={TIMM_EPS:g})"),
        (core.activation in ("gelu", "gelu_tanh"), f"activation {core.activation!r} (timm's ViT MLP uses GELU)"),
        (not core.rope, "rotary positions"),
        (core.n_kv_heads in (None, core.n_heads), "grouped-query attention"),
        (not core.residual_attention, "residual attention"),
        (positions in ("learned", "none"), f"fixed {positions} positions (timm's ViT learns its pos_embed)"),
        (not tok.get("shifted_patches", False), "shifted patch tokenization"),
        (head.get("pool", "cls") in ("cls", "mean"), f"{head.get('pool')} pooling (timm's ViT pools by token or avg)"),
        (not (head.get("norm", False) and core.has_final_norm),
         "both a final norm and a norm after pooling (timm's ViT has one or the other)"),
        (not head.get("pooler", False), "a pooler before the classifier (timm's ViT has no pre-logits layer)"),
    ]
    for ok, what in checks:
        if not ok:
            raise CannotExport(f"cannot export to timm: the model has {what}; use --format onnx")
    size, patch = tok.get("image_size", 224), tok.get("patch_size", 16)
    args = {
        "img_size": list(size) if isinstance(size, (list, tuple)) else [size, size],
        "patch_size": list(patch) if isinstance(patch, (list, tuple)) else [patch, patch],
        "in_chans": tok.get("channels", 3), "num_classes": head["n_classes"],
        "global_pool": "token" if head.get("pool", "cls") == "cls" else "avg",
        "embed_dim": core.d_model, "depth": core.n_layers, "num_heads": core.n_heads,
        "mlp_ratio": core.hidden_dim / core.d_model, "qkv_bias": core.qkv_bias,
        "init_values": core.layer_scale, "class_token": tok.get("class_token", True),
        "pos_embed": "learn" if positions == "learned" else "none",
        "no_embed_class": not tok.get("prefix_positions", True), "reg_tokens": tok.get("register_tokens", 0),
        "pre_norm": tok.get("pre_norm", False), "final_norm": core.has_final_norm,
        "fc_norm": bool(head.get("norm", False)),
    }
    if core.activation == "gelu_tanh":
        args["act_layer"] = "gelu_tanh"
    return args


def timm_pretrained_cfg(args: dict, preprocess: dict | None) -> dict:
    """timm's ``pretrained_cfg`` for the run's evaluation transform (``preprocess``: its preprocess.json), so that
    ``create_transform(**resolve_data_config({}, model=vit))`` treats an image as xformer does: resized to the
    input size whatever its shape (crop_mode "squash", crop_pct 1: no centre crop) with the interpolation of
    ``timm_interpolation``, then (x - mean) / std; a run that does not normalise gets mean 0 / std 1 per channel
    (timm would otherwise fill in ImageNet's 3-channel statistics). timm resizes the 8-bit PIL image where
    xformer resizes floats, so pixels may differ by rounding. Without a preprocess spec, mean/std are left out
    (timm's defaults)."""
    channels, (h, w) = args["in_chans"], args["img_size"]
    cfg = {"input_size": [channels, h, w], "num_classes": args["num_classes"], "crop_pct": 1.0,
           "crop_mode": "squash", "interpolation": timm_interpolation(preprocess, (h, w)),
           "fixed_input_size": True}
    if preprocess:
        mean, std = preprocess.get("mean"), preprocess.get("std")
        cfg.update(mean=list(mean) if mean is not None else [0.0] * channels,
                   std=list(std) if std is not None else [1.0] * channels)
    return cfg


def timm_interpolation(preprocess: dict | None, image_size: tuple[int, int]) -> str:
    """The timm interpolation of the run's resize to ``image_size`` (preprocess.json's ``resize``,
    ``data/images.preprocess_spec``; no spec: "bilinear"):

    - "antialias" (image folders, MNIST, CIFAR-10): torchvision's antialiased bilinear Resize, which is PIL's
      bilinear filter: "bilinear".
    - "bilinear" (digits): a file is first brought to ``source_size`` (8x8), a side that shrinks by area
      averaging (``data.image_augment.shrink_or_stretch``), which is PIL's box filter for a whole-number factor:
      "box" when ``image_size`` is no larger. A run of a larger ``image_size`` then upsamples the 8x8
      bilinearly, which no single timm interpolation repeats after the box: "bilinear", which matches on 8x8
      files only.
    """
    if not preprocess or preprocess.get("resize") != "bilinear":
        return "bilinear"
    source = preprocess.get("source_size")
    grows = source is not None and any(want > have for want, have in zip(image_size, source))
    return "bilinear" if grows else "box"


def export_timm(model, folder: Path, preprocess: dict | None = None, class_names: list | None = None) -> dict:
    """model.safetensors under timm's names and a config.json in timm's Hub layout, so that both
    ``timm.create_model(cfg["architecture"], **cfg["model_args"]).load_state_dict(weights)`` (strict) and
    ``timm.create_model("local-dir:FOLDER", pretrained=True)`` rebuild the model."""
    from safetensors.torch import save_file

    from .timm_vit import to_timm_state_dict

    args = timm_model_args(model.config)
    state = {k: v.contiguous() for k, v in to_timm_state_dict(model).items()}
    save_file(state, str(folder / "model.safetensors"))
    config = {"architecture": "vit_tiny_patch16_224",  # every argument that differs is in model_args
              "num_classes": args["num_classes"], "num_features": args["embed_dim"],
              "global_pool": args["global_pool"], "model_args": args,
              "pretrained_cfg": timm_pretrained_cfg(args, preprocess)}
    if class_names:
        config["label_names"] = list(class_names)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {"architecture": config["architecture"], "model_args": args}


# ---------------------------------------------------------------- dispatch


def check_exportable(model, fmt: str) -> None:
    """CannotExport (one line naming the feature) when ``fmt`` cannot express ``model``; a MissingExtra when
    the format's optional packages are not installed; a ConfigError when its head is untrained (``model.untrained``:
    read from a checkpoint without it), which would be written as a trained model's. Writes nothing."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_trained(model, "an export as a trained model")
    if getattr(model, "config", None) is None:  # an image baseline (CNN, MLP) is a plain torch module
        raise CannotExport(f"cannot export the {type(model).__name__} baseline: --format {fmt} covers the "
                           "transformer runs (tokenizer, core, head)")
    if fmt == "hf":
        need("transformers", "--format hf")
        _check_hf(model)
    elif fmt == "timm":
        timm_model_args(model.config)
    else:
        from .onnx_export import check_onnx_exportable

        check_onnx_exportable(model)


def export_model(model, fmt: str, folder: str | Path, run_dir: str | Path | None = None) -> dict:
    """Write ``model`` in format ``fmt`` into ``folder``, a new or empty folder (created when missing; one that
    holds files is refused); a dict describing what was written. ``run_dir`` (optional) supplies the tokenizer
    files (hf), preprocessing and class names (timm)."""
    folder = Path(folder)
    run = Path(run_dir) if run_dir is not None else None
    check_exportable(model, fmt)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder for the export; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"{folder} already holds files; give a new or empty folder for the export")
    class_names = _class_names(model, run)  # a hand-edited list of another count is refused before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    if fmt == "hf":
        return export_hf(model, folder, run / "tokenizer" if run else None, run)
    if fmt == "timm":
        return export_timm(model, folder, _run_preprocess(run), class_names)
    from .onnx_export import export_onnx

    return export_onnx(model, folder / "model.onnx", run, _run_preprocess(run))


def _run_preprocess(run: Path | None) -> dict | None:
    """The run's evaluation transform: preprocess.json, else (a run that predates it) the one its config.yaml
    implies (``default_preprocess``, as predict reads it); None without a run."""
    spec = _read_json(run, "preprocess.json")
    if spec is not None or run is None or not (run / "config.yaml").is_file():
        return spec
    import yaml

    from ..data.images import default_preprocess

    try:
        recipe = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
        data, tok = recipe.get("data") or {}, ((recipe.get("model") or {}).get("tokenizer") or {}).get("args") or {}
        size = tok.get("image_size")
        size = [size, size] if isinstance(size, int) else size
        return default_preprocess(str(data.get("name")), data.get("args") or {}, size, tok.get("channels"))
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def _class_names(model, run: Path | None) -> list[str] | None:
    """The names of a classifier's logits from the run's classes.json (None without one, or for another head),
    checked as predict checks them: a list of another count than the head's classes is one ConfigError."""
    head = model.config.head
    if run is None or head.name != "classification" or not (run / "classes.json").is_file():
        return None
    return read_class_names(run / "classes.json", head.args["n_classes"])


def _read_json(run: Path | None, name: str):
    try:
        return json.loads((run / name).read_text(encoding="utf-8")) if run is not None else None
    except (OSError, ValueError):
        return None


__all__ = ["FORMATS", "CannotExport", "check_exportable", "export_model", "export_hf", "export_timm",
           "hf_kind", "timm_model_args"]
