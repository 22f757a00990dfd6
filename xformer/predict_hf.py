"""``xformer predict`` on a Hugging Face classifier folder itself, as ``xformer generate`` takes a GPT-2 folder:
a ``BertForSequenceClassification`` classifies texts, a ``ViTForImageClassification`` image files, a
``BertForMaskedLM`` (or ``BertForPreTraining``) fills the [MASK]s of texts (predict_fill.py), with no run folder
and no training.

What a run folder records comes from the checkpoint folder instead (``interop/pretrained.py``): the classes
from ``id2label`` (LABEL_i read as i), the tokenizer from its tokenizer files (texts become [CLS] text [SEP],
truncated to ``max_position_embeddings``), and an image's preprocessing from ``preprocessor_config.json``
(resized to the model's size, scaled to [0, 1], then its ``image_mean`` / ``image_std``); a ViT folder without
one is refused in one line, since nothing else says how its images were normalised. xformer resizes the image
as floats where transformers' image processor resizes the 8-bit image with PIL, so a file of another size may
give probabilities that differ in the last digits; a file of the model's size gives transformers' own.
"""
from __future__ import annotations

from .config import ConfigError
from .errors import a_or_an
from .heads.mlm import MASKED_LM_HEADS


def load_hf_classifier(folder) -> tuple:
    """(model in eval mode, "text", "images" or "fill", what predict needs: the text info of
    ``predict.predict_texts``, the (preprocess spec, class names) of ``predict.predict_images`` or the info of
    ``predict_fill.predict_fill``) of a Hugging Face classifier folder or BERT masked LM; another kind of checkpoint
    is refused in one line."""
    from .data.images import preprocess_spec
    from .interop.pretrained import load_source, pretrained_model
    from .models import module_names

    pre = load_source(f"hf:{folder}")
    model, head = pretrained_model(pre), pre.model.head
    if pre.kind == "bert" and head.name in MASKED_LM_HEADS and not model.untrained:
        if pre.tokenizer is None:
            raise no_tokenizer(folder)
        vocab = pre.vocabulary()  # BertForMaskedLM / BertForPreTraining: fill-mask (predict_fill.py)
        vocab.require("cls", "sep", "mask")
        return model, "fill", {"vocab": vocab, "max_length": pre.model.tokenizer.args["max_positions"],
                               "name": str(folder)}
    if head.name != "classification" or pre.class_names is None or model.untrained:
        what = pre.architecture or f"{pre.kind} checkpoint"
        untrained = [name for name in model.state_dict() if name in model.untrained]
        detail = [f"its {layer} is {a_or_an(role)}" for layer, role in pre.unread.items()]
        if untrained:
            detail.append(f"read with an untrained {head.name} head: {module_names(untrained, model.state_dict())} "
                          "not in it")
        raise ConfigError(f"{folder} is {a_or_an(what)} ({'; '.join(detail) or f'read with a {head.name} head'}), "
                          "without a classifier of texts or images; xformer predict reads "
                          "BertForSequenceClassification, ViTForImageClassification and BertForMaskedLM (fill-mask) "
                          "folders, or the run folder of a classifier fine-tuned from it (xformer train --init-from "
                          "hf:FOLDER)")
    tok = pre.model.tokenizer.args
    if pre.kind == "bert":
        if pre.tokenizer is None:
            raise no_tokenizer(folder)
        info = {"vocab": pre.vocabulary(), "names": pre.class_names, "max_length": tok["max_positions"],
                "text_column": "text", "pair_column": None}
        return model, "text", info
    if pre.normalisation is None:
        raise ConfigError(f"{folder} has no preprocessor_config.json to say how its images were normalised; save "
                          "the image processor beside the model (processor.save_pretrained(FOLDER))")
    spec = preprocess_spec(tok["image_size"], tok["channels"], pre.normalisation["mean"], pre.normalisation["std"])
    return model, "images", (spec, pre.class_names)


def no_tokenizer(folder) -> ConfigError:
    return ConfigError(f"{folder} holds no tokenizer (tokenizer.json or vocab.txt) to turn texts into ids; save it "
                       "beside the model (tokenizer.save_pretrained(FOLDER))")


__all__ = ["load_hf_classifier"]
