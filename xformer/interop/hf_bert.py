"""BERT weights to and from Hugging Face ``transformers`` (``BertModel``, ``BertForMaskedLM``,
``BertForPreTraining``, ``BertForSequenceClassification``).

BERT (Devlin et al. 2019) is an xformer encoder with post-norm blocks:

    x = LayerNorm(word[ids] + pos[t] + type[seg])      tokenizer "bert_text"
    x = LayerNorm(x + attn(x)); x = LayerNorm(x + mlp(x))   norm_first=False, no final norm
    masked-LM / NSP heads                              head "masked_lm" / "masked_lm_nsp"
    z = W_c dropout(tanh(W_p h_[CLS] + b_p)) + b_c      head "classification" (pool cls, pooler true)

Names, Hugging Face (``bert.`` prefix optional) -> xformer:

    embeddings.word_embeddings / position_embeddings / token_type_embeddings / LayerNorm
                                        tokenizer.embed / positions / token_types / norm
    encoder.layer.{i}.attention.self.query|key|value   core.blocks.{i}.attn.qkv  (rows stacked [q; k; v])
    encoder.layer.{i}.attention.output.dense            core.blocks.{i}.attn.proj
    encoder.layer.{i}.attention.output.LayerNorm        core.blocks.{i}.res1.norm
    encoder.layer.{i}.intermediate.dense / output.dense core.blocks.{i}.mlp.fc1 / fc2
    encoder.layer.{i}.output.LayerNorm                  core.blocks.{i}.res2.norm
    pooler.dense                                        head.pooler
    cls.predictions.transform.dense / LayerNorm         head.dense / head.norm
    cls.predictions.decoder.weight / cls.predictions.bias   head.decoder (weight tied to the word embedding)
    cls.seq_relationship                                head.nsp
    classifier                                          head.fc (a classification head; its pooler is head.pooler)

A sequence classifier's classes are its config's ``id2label`` (``support.hf_class_names``: Hugging Face's
default names LABEL_0, LABEL_1, ... stand for the labels 0, 1, ..., so they are read as "0", "1", ...).

BERT's Linear layers are ``nn.Linear``: no transposes. ``hidden_act="gelu"`` is exact GELU.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from ..core import CoreConfig
from ..models import Model, ModelConfig, PartConfig, build_model, check_trained
from .hf_checkpoint import is_checkpoint_folder, load_exactly, read_hf_folder, strip_prefix, tied_output_layer
from .support import hf_class_names, need, state_with_zero_biases

_ACTIVATION_TO_XFORMER = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
_ACTIVATION_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
_EMBEDDINGS = [("word_embeddings", "embed"), ("position_embeddings", "positions"),
               ("token_type_embeddings", "token_types"), ("LayerNorm", "norm")]
_BLOCK = [("attention.output.dense", "attn.proj"), ("attention.output.LayerNorm", "res1.norm"),
          ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2"), ("output.LayerNorm", "res2.norm")]
_HEAD = [("pooler.dense", "head.pooler"), ("cls.predictions.transform.dense", "head.dense"),
         ("cls.predictions.transform.LayerNorm", "head.norm"), ("cls.seq_relationship", "head.nsp"),
         ("classifier", "head.fc")]
_EXPORTED_HEAD = {"masked_lm": _HEAD[1:3], "masked_lm_nsp": _HEAD[:4], "classification": [_HEAD[0], _HEAD[4]]}
# classes whose task layer no xformer head is (it scores each token, each choice, answer spans): class -> (the
# layer's name, what it is); their encoder (and pooler) is read as a BertModel's, the layer never
OTHER_HEADS = {"BertForTokenClassification": ("classifier", "per-token classifier"),
               "BertForMultipleChoice": ("classifier", "multiple-choice scorer"),
               "BertForQuestionAnswering": ("qa_outputs", "answer-span scorer")}


def _get(config, key, default=None):
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def bert_head(keys) -> str:
    """The xformer head of a BERT state dict's (``bert.``-stripped) keys: classification for a sequence classifier,
    masked_lm_nsp when it has an NSP classifier or only a pooler (a plain ``BertModel``), else masked_lm."""
    if "classifier.weight" in keys:
        return "classification"
    has_mlm = "cls.predictions.transform.dense.weight" in keys
    return "masked_lm_nsp" if "cls.seq_relationship.weight" in keys or (
        "pooler.dense.weight" in keys and not has_mlm) else "masked_lm"


def other_head(architectures) -> tuple[str, str, str] | None:
    """(class, layer, what it is) when ``architectures`` (config.json's) names a class of ``OTHER_HEADS``."""
    found = [name for name in architectures or () if name in OTHER_HEADS]
    return (found[0], *OTHER_HEADS[found[0]]) if found else None


def without_other_classifier(architectures, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` without the task layer of a token or multiple-choice classifier (``classifier.*``) or a question
    answerer (``qa_outputs.*``) when ``architectures`` (config.json's) names one: its encoder (and pooler) are read
    as a ``BertModel``'s, never its layer as a sequence classifier's (or anything else)."""
    found = other_head(architectures)
    if found is None:
        return state
    return {k: v for k, v in state.items() if not k.startswith((f"{found[1]}.", f"bert.{found[1]}."))}


def bert_config_to_xformer(config, head: str = "masked_lm") -> ModelConfig:
    """A ``BertConfig`` (or its dict) -> the xformer ModelConfig; ``head`` is masked_lm, masked_lm_nsp or
    classification (``BertForSequenceClassification``: [CLS], the pooler, dropout, the classifier)."""
    if _get(config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("only BERT with absolute position embeddings converts to xformer")
    if _get(config, "is_decoder", False) or _get(config, "add_cross_attention", False):
        raise ValueError("BERT as a decoder (is_decoder / add_cross_attention: a causal BertLMHeadModel, or half of "
                         "an encoder-decoder) is not supported; xformer reads BERT encoders (BertModel, "
                         "BertForMaskedLM, BertForSequenceClassification, ...) and generates text from GPT-2 folders")
    activation = _get(config, "hidden_act", "gelu")
    if activation not in _ACTIVATION_TO_XFORMER:
        raise ValueError(f"BERT activation {activation!r} not supported; one of {', '.join(_ACTIVATION_TO_XFORMER)}")
    eps = _get(config, "layer_norm_eps", 1e-12)
    dropout = _get(config, "hidden_dropout_prob", 0.1)
    core = CoreConfig(d_model=_get(config, "hidden_size"), n_layers=_get(config, "num_hidden_layers"),
                      n_heads=_get(config, "num_attention_heads"), d_ff=_get(config, "intermediate_size"),
                      activation=_ACTIVATION_TO_XFORMER[activation], norm_eps=eps, norm_first=False,
                      final_norm=False, dropout=dropout,
                      attn_dropout=_get(config, "attention_probs_dropout_prob", 0.1), init="gpt2")
    tokenizer = PartConfig("bert_text", {"vocab_size": _get(config, "vocab_size"),
                                         "max_positions": _get(config, "max_position_embeddings", 512),
                                         "type_vocab_size": _get(config, "type_vocab_size", 2),
                                         "norm_eps": eps, "dropout": dropout,
                                         "pad_id": _get(config, "pad_token_id")})
    head_args = {"tie_weights": bool(_get(config, "tie_word_embeddings", True))}
    if head == "classification":
        if _get(config, "problem_type") == "regression":
            raise ValueError("a regression model (problem_type regression) is not a classifier; xformer reads "
                             "BERT sequence classifiers")
        if _get(config, "problem_type") == "multi_label_classification":  # a sigmoid per class, not a softmax
            raise ValueError("a multi-label classifier (problem_type multi_label_classification) scores each class "
                             "apart, where xformer's head picks one; to start from its encoder save it as one: "
                             "BertModel.from_pretrained(FOLDER).save_pretrained(NEW_FOLDER)")
        classifier_dropout = _get(config, "classifier_dropout")
        head_args = {"n_classes": len(hf_class_names(config)), "pool": "cls", "pooler": True,
                     "dropout": dropout if classifier_dropout is None else classifier_dropout}
    return ModelConfig("encoder", core, tokenizer, PartConfig(head, head_args))


def xformer_config_to_bert(config: ModelConfig, **extra):
    """The inverse of :func:`bert_config_to_xformer`; raises ValueError for what BERT cannot express
    (a bias-free model is a BERT whose biases are zero, see ``to_hf_bert``)."""
    BertConfig = need("transformers", "exporting to BERT").BertConfig

    core, tok = config.core, config.tokenizer
    checks = [
        (config.architecture == "encoder", f"architecture {config.architecture!r} (BERT is an encoder)"),
        (tok.name == "bert_text", f"tokenizer {tok.name!r} (BERT's is bert_text)"),
        (config.head.name in _EXPORTED_HEAD, f"head {config.head.name!r}"),
        (core.norm == "layernorm", f"{core.norm} norms (BERT uses LayerNorm: train with model.core.norm=layernorm)"),
        (not core.norm_first, "pre-norm blocks (BERT's are post-norm: train with model.core.norm_first=false)"),
        (not core.has_final_norm, "a final norm (BERT has none: train with model.core.final_norm=false)"),
        (core.activation in _ACTIVATION_TO_HF, f"activation {core.activation!r}"),
        (not core.rope, "rotary positions"),
        (core.n_kv_heads in (None, core.n_heads), f"grouped-query attention ({core.n_kv_heads} key/value heads)"),
        (core.layer_scale is None, "layer scale"),
        (not core.residual_attention and core.attn_proj_dropout == 0,
         "residual attention or dropout on the attention output besides the residual dropout"),
    ]
    if config.head.name == "classification":  # BertForSequenceClassification: [CLS] -> pooler -> classifier
        head = config.head.args
        checks += [(head.get("pool", "cls") == "cls", f"{head.get('pool')} pooling (BERT's classifier reads [CLS])"),
                   (bool(head.get("pooler")), "no pooler (BERT's classifier reads tanh(W [CLS]); train with "
                                              "model.head.args.pooler=true)"),
                   (not head.get("norm"), "a norm after pooling")]
        extra = {"classifier_dropout": head.get("dropout", 0.0), **extra}  # the run's, back when fine-tuned again
        if "id2label" not in extra:
            extra = {"num_labels": head["n_classes"], **extra}
    for ok, what in checks:
        if not ok:
            raise ValueError(f"cannot export to BERT: the model has {what}")
    return BertConfig(vocab_size=tok.args["vocab_size"], hidden_size=core.d_model, num_hidden_layers=core.n_layers,
                      num_attention_heads=core.n_heads, intermediate_size=core.hidden_dim,
                      hidden_act=_ACTIVATION_TO_HF[core.activation], hidden_dropout_prob=core.dropout,
                      attention_probs_dropout_prob=core.attn_dropout,
                      max_position_embeddings=tok.args.get("max_positions", 512),
                      type_vocab_size=tok.args.get("type_vocab_size", 2), layer_norm_eps=core.norm_eps,
                      pad_token_id=tok.args.get("pad_id") or 0,
                      tie_word_embeddings=config.head.args.get("tie_weights", True), **extra)


def bert_state_dict_to_xformer(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """Hugging Face BERT names -> xformer; head weights are converted where the checkpoint has them."""
    state = strip_prefix(state, "bert.")
    out = {}
    for hf, ours in _EMBEDDINGS:
        for p in ("weight", "bias") if hf == "LayerNorm" else ("weight",):
            out[f"tokenizer.{ours}.{p}"] = state[f"embeddings.{hf}.{p}"]
    for i in range(n_layers):
        layer, block = f"encoder.layer.{i}.", f"core.blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{block}attn.qkv.{p}"] = torch.cat([state[f"{layer}attention.self.{n}.{p}"]
                                                     for n in ("query", "key", "value")])
            for hf, ours in _BLOCK:
                out[f"{block}{ours}.{p}"] = state[f"{layer}{hf}.{p}"]
    for hf, ours in _HEAD:
        if f"{hf}.weight" in state:
            out[f"{ours}.weight"], out[f"{ours}.bias"] = state[f"{hf}.weight"], state[f"{hf}.bias"]
    if "cls.predictions.bias" in state:
        out["head.decoder.bias"] = state["cls.predictions.bias"]
    if "cls.predictions.decoder.weight" in state:  # a tied decoder is the embedding (bert_checkpoint)
        out["head.decoder.weight"] = state["cls.predictions.decoder.weight"]
    return out


def bert_checkpoint(config, state: dict[str, Tensor], head: str | None = None) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(ModelConfig, weights under xformer's names) of a BERT config and state dict, with ``head`` (default
    ``bert_head``'s); a masked-LM decoder is tied to the word embedding where transformers ties it
    (``tied_output_layer``): one saved untied but absent is left out of the weights (untrained)."""
    model = bert_config_to_xformer(config, head or bert_head(strip_prefix(state, "bert.").keys()))
    weights = bert_state_dict_to_xformer(state, model.core.n_layers)
    if model.head.name != "classification":
        model.head.args["tie_weights"] = tied_output_layer(weights, "head.decoder.weight", "tokenizer.embed.weight",
                                                           model.head.args["tie_weights"])
    return model, weights


def xformer_state_dict_to_bert(state: dict[str, Tensor], n_layers: int, head: str) -> dict[str, Tensor]:
    """xformer -> the state dict of a ``BertForMaskedLM`` (head masked_lm), ``BertForPreTraining``
    (masked_lm_nsp) or ``BertForSequenceClassification`` (classification)."""
    out = {}
    for hf, ours in _EMBEDDINGS:
        for p in ("weight", "bias") if hf == "LayerNorm" else ("weight",):
            out[f"bert.embeddings.{hf}.{p}"] = state[f"tokenizer.{ours}.{p}"]
    for i in range(n_layers):
        layer, block = f"bert.encoder.layer.{i}.", f"core.blocks.{i}."
        for p in ("weight", "bias"):
            q, k, v = state[f"{block}attn.qkv.{p}"].chunk(3)
            for name, t in zip(("query", "key", "value"), (q, k, v)):
                out[f"{layer}attention.self.{name}.{p}"] = t.contiguous()
            for hf, ours in _BLOCK:
                out[f"{layer}{hf}.{p}"] = state[f"{block}{ours}.{p}"]
    for hf, ours in _EXPORTED_HEAD[head]:
        prefix = f"bert.{hf}" if hf.startswith("pooler") else hf
        out[f"{prefix}.weight"], out[f"{prefix}.bias"] = state[f"{ours}.weight"], state[f"{ours}.bias"]
    if head == "classification":
        return out
    out["cls.predictions.decoder.weight"] = state["head.decoder.weight"]
    out["cls.predictions.bias"] = out["cls.predictions.decoder.bias"] = state["head.decoder.bias"]
    return out


def load_bert(source, head: str | None = None) -> Model:
    """An xformer Model (eval mode) from a ``BertModel`` / ``BertForMaskedLM`` / ``BertForPreTraining`` /
    ``BertForSequenceClassification`` object or a local folder written by ``save_pretrained``.

    ``head`` defaults to what the checkpoint holds (``bert_head``): classification for a sequence
    classifier, masked_lm_nsp when it has an NSP classifier or only a pooler (plain ``BertModel``), else
    masked_lm. Head
    weights the checkpoint lacks keep their initial values (with a warning, and named in ``model.untrained``):
    for a ``BertModel`` only ``hidden_states`` and ``pooled`` are meaningful.
    """
    if is_checkpoint_folder(source):
        config, state = read_hf_folder(source)
    else:
        config, state = source.config, source.state_dict()
    state = without_other_classifier(_get(config, "architectures") or [type(source).__name__], state)
    model_config, converted = bert_checkpoint(config, state, head)
    model = build_model(model_config)
    own_keys = set(model.state_dict())
    missing = sorted(own_keys - set(converted))
    if missing:
        warnings.warn(f"BERT checkpoint has no weights for {missing}; they keep their initial values", stacklevel=2)
    load_exactly(model, {k: v for k, v in converted.items() if k in own_keys or not k.startswith("head.")},
                 allow_missing=tuple(missing))
    model.untrained = frozenset(missing)
    return model.eval()


def to_hf_bert(model: Model, **config_extra):
    """The Hugging Face model (eval mode) with an xformer BERT's weights: ``BertForPreTraining``
    for head masked_lm_nsp, ``BertForMaskedLM`` for masked_lm, ``BertForSequenceClassification`` for a
    classification head (give its classes as ``id2label`` / ``label2id``); a bias-free model gets zero biases.
    A model whose head is untrained (``model.untrained``: read from a ``BertModel``) is refused."""
    check_trained(model, "an export as a trained model")
    transformers = need("transformers", "exporting to BERT")
    head = model.config.head.name
    if head == "masked_lm" and model.head.nsp is not None:  # built with nsp=True
        head = "masked_lm_nsp"
    hf_config = xformer_config_to_bert(model.config, **config_extra)
    hf_class = {"masked_lm": transformers.BertForMaskedLM, "masked_lm_nsp": transformers.BertForPreTraining,
                "classification": transformers.BertForSequenceClassification}[head]
    hf = hf_class(hf_config)
    load_exactly(hf, xformer_state_dict_to_bert(state_with_zero_biases(model), model.config.core.n_layers, head))
    return hf.eval()


def save_bert(model: Model, folder: str | Path, **config_extra) -> Path:
    """Write config.json + model.safetensors that the matching ``Bert*.from_pretrained(folder)`` loads."""
    to_hf_bert(model, **config_extra).save_pretrained(folder)
    return Path(folder)


__all__ = ["OTHER_HEADS", "bert_head", "other_head", "without_other_classifier", "bert_config_to_xformer",
           "xformer_config_to_bert", "bert_state_dict_to_xformer", "xformer_state_dict_to_bert", "bert_checkpoint",
           "load_bert", "to_hf_bert", "save_bert"]
