"""The batch contract: the keys a batch dict carries, per task, and their shapes.

A data bundle's collate function makes these dicts, tokenizers read the inputs, heads (and
baselines) read the targets. B = batch, N = target/decoder length, S = source length, L = input
window, H = horizon, C = channels (series) or colour channels (images), K = classes.

task                    constant               key                   shape, dtype
----------------------  ---------------------  --------------------  --------------------------------------------
causal LM               INPUT_IDS              input_ids             (B, N) long
                        ATTENTION_MASK         attention_mask        (B, N) bool/long, 1 = real token; optional
                        LABELS                 labels                (B, N) long, the next token; -100 = no loss
masked LM (BERT)        INPUT_IDS, ATTENTION_MASK                    as above
                        TOKEN_TYPE_IDS         token_type_ids        (B, N) long, segment 0 / 1; optional
                        LABELS                 labels                (B, N) long, the original id where masked, else -100
                        NEXT_SENTENCE_LABEL    next_sentence_label   (B,) long in {0, 1} (with NSP)
sequence-to-sequence    SRC_IDS                src_ids               (B, S) long, the encoder's input
                        SRC_MASK               src_mask              (B, S) bool, True = real token; optional
                        INPUT_IDS, ATTENTION_MASK                    (B, N) the decoder input (shifted right)
                        LABELS                 labels                (B, N) long; -100 = no loss
text classification     INPUT_IDS, ATTENTION_MASK                    as above
                        LABELS                 labels                (B,) long
image classification    IMAGES                 images                (B, C, H, W) float
                        LABELS                 labels                (B,) long, or (B, K) float (MixUp/CutMix)
series forecasting      INPUTS                 inputs                (B, L, C) float, the input window
                        TARGETS                targets               (B, H, C) float, the H values after it
                        PAST_COVARIATES        past_covariates       (B, L, P) float, known up to the origin; optional
                        FUTURE_COVARIATES      future_covariates     (B, L + H, F) float, known ahead; optional
                        STATIC_COVARIATES      static_covariates     (B, S) float, one vector per series; optional
series classification   INPUTS                 inputs                (B, L, C) float
                        LABELS                 labels                (B,) long

Targets (``labels``, ``targets``, ``next_sentence_label``) are absent when predicting; a head then
returns no loss. The strings are those of earlier releases: saved runs and user code are unaffected.
"""
from collections.abc import Mapping

from .errors import ConfigError

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"
SRC_IDS = "src_ids"
SRC_MASK = "src_mask"
IMAGES = "images"
INPUTS = "inputs"
LABELS = "labels"
TARGETS = "targets"
NEXT_SENTENCE_LABEL = "next_sentence_label"

__all__ = ["INPUT_IDS", "ATTENTION_MASK", "TOKEN_TYPE_IDS", "SRC_IDS", "SRC_MASK", "IMAGES", "INPUTS", "LABELS",
           "TARGETS", "NEXT_SENTENCE_LABEL", "batch_input", "image_input"]
PAST_COVARIATES = "past_covariates"
FUTURE_COVARIATES = "future_covariates"
STATIC_COVARIATES = "static_covariates"


def batch_input(batch, key: str):
    """``batch[key]``, the input a model reads; a batch that is no dict, or lacks ``key``, is refused in one line
    (a notebook's model(images) or a misspelt key was a bare IndexError or KeyError inside a tokenizer)."""
    if not isinstance(batch, Mapping):
        raise ConfigError(f"a model takes a batch dict such as {{{key!r}: tensor}}, got {type(batch).__name__}; "
                          "xformer/batch.py lists the keys of each task")
    if key not in batch:
        raise ConfigError(f"the batch has no {key!r} (its keys: {', '.join(map(repr, batch)) or 'none'}); the model "
                          f"reads its input from batch[{key!r}] (xformer/batch.py lists the keys of each task)")
    return batch[key]


def image_input(batch, key: str = IMAGES):
    """``batch[key]``, images the model reads: float, as the data gives them (scaled to [0, 1], then normalised). An
    integer tensor (torchvision.io.read_image's uint8) is refused in one line: cast as it is, 0-255 would reach a
    model trained on [0, 1] and predict wrongly without a word (timm's models stop with a dtype error)."""
    images = batch_input(batch, key)
    if hasattr(images, "is_floating_point") and not images.is_floating_point():
        raise ConfigError(f"batch[{key!r}] holds {images.dtype} images; the model reads float images as its data "
                          "gives them, scaled to [0, 1] and normalised: convert with torchvision.transforms.v2."
                          "ToDtype(torch.float32, scale=True) (uint8 / 255) and the run's mean / std "
                          "(RUN/preprocess.json), or predict with xformer.predict.predict_run, which does both")
    return images
