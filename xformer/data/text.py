"""Causal language modelling on one long text, as nanoGPT does it: ``text_lm``.

The text becomes one stream of ids x_0 .. x_{M-1}, cut by position into

    train = x[0 : a]        val = x[a : b]        test = x[b : M]

(the first 1 - val_fraction - test_fraction of the characters, then val, then
test at the very end; nanoGPT's shakespeare_char split is a = 90%, no test).

Training windows start at every offset i of the train part, so a model of
``block_size`` B learns to predict each token from up to B earlier ones:

    input_ids = x[i : i + B]        labels = x[i + 1 : i + B + 1]        0 <= i <= a - B - 1

Items are views into the one long tensor (no window is materialised); the
trainer's shuffling sampler draws them at random, nanoGPT's ``get_batch``.

Validation / test windows score every token of the split exactly once. With
T = b - a targets, window k reads x[a - 1 + kB : a - 1 + (k+1)B] and predicts
x[a + kB : a + (k+1)B] (its first input token is the one just before the
split: context, never a target). A remainder r = T mod B > 0 is the last full
window ending at b, with its first B - r labels set to -100 (already scored).
Then the trainer's mean loss is exactly

    CE = -1/T sum_{t=a}^{b-1} ln p(x_t | x_{t-B'} .. x_{t-1}),     1 <= B' <= B,

and ``loss_metrics`` reports perplexity exp(CE), bits per token CE / ln 2 and bits
per character CE * T / (C ln 2), C = characters of the split's text (for a
character vocabulary T = C and BPC = CE / ln 2).

Tokenizers (``tokenizer``):
  "char"       one id per character; newlines are characters. The vocabulary is
               every character of the WHOLE text (not only the train part, so
               that val/test hold no unknown symbol; nanoGPT does the same): 65
               symbols for tinyshakespeare, no special tokens.
  "wordpiece"  WordPiece learned on the train part only; the text is encoded
               paragraph by paragraph (blank-line separated, lines joined by
               spaces) with [EOS] after each paragraph, the document separator
               a generator stops at (WordPiece keeps no line break to learn
               from). The cuts a and b are moved to the next line break so
               that no line is split between two parts (to the next space
               where that would empty a part: a text of one long line).
  a folder     a saved vocabulary (``xformer tokenizer train``, RUN_DIR/tokenizer).
               One that keeps whitespace (``Vocab.keeps_whitespace``: a
               byte-level BPE, GPT-2's from ``init_from: hf:``) reads the text
               as written, line breaks and all, as Hugging Face's run_clm and
               nanoGPT feed GPT-2; its source's name for a special token in the
               text (GPT-2's <|endoftext|> between documents) is that token.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..batch import INPUT_IDS, LABELS
from ..config import ConfigError
from ..heads.lm import IGNORE_INDEX
from ..metrics_text import bits_per_character, bits_per_token, perplexity
from ..registry import check_fractions, check_sizes
from .corpus import corpus_name, read_text_files
from .registry import DataBundle, register_data
from .vocab import CharVocab, Vocab, make_vocab


# ---------------------------------------------------------------- windows


def token_digest(ids: Tensor) -> str:
    """SHA-256 of a stretch of ids: the split's text as the vocabulary reads it, what a run records to tell its
    own text from another of the same length (train/data_identity.py)."""
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


class TrainWindows(Dataset):
    """Every offset i of ``ids``: input x[i : i+B], labels x[i+1 : i+B+1] (views, no copy)."""

    def __init__(self, ids: Tensor, block_size: int):
        self.ids, self.block_size = ids, block_size

    def digest(self) -> str:
        return token_digest(self.ids)

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        b = self.block_size
        return {INPUT_IDS: self.ids[i: i + b], LABELS: self.ids[i + 1: i + b + 1]}


class EvalWindows(Dataset):
    """Non-overlapping windows whose labels cover ids[first : last] exactly once.

    ``ids`` is the whole stream: the window that predicts ids[first] reads ids[first - 1]
    as context. A stream shorter than block_size + 1 up to ``last`` (a short held-out text scored whole) is one
    window of last - 1 tokens: a causal model reads fewer positions than it learned.
    """

    def __init__(self, ids: Tensor, first: int, last: int, block_size: int):
        b, n_targets = min(block_size, last - 1), last - first
        if first < 1 or n_targets < 1:
            raise ValueError(f"EvalWindows needs 1 <= first < last, got {first} and {last}")
        self.ids, self.block_size, self.scored = ids, b, (first, last)
        # (start of the input window, how many leading labels are already scored)
        self.windows = [(first - 1 + k * b, 0) for k in range(n_targets // b)]
        remainder = n_targets % b
        if remainder:
            self.windows.append((last - 1 - b, b - remainder))

    def __len__(self) -> int:
        return len(self.windows)

    def digest(self) -> str:
        """Of the ids it scores, ids[first : last]."""
        return token_digest(self.ids[self.scored[0]: self.scored[1]])

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        start, scored = self.windows[k]
        b = self.block_size
        labels = self.ids[start + 1: start + b + 1]
        if scored:
            labels = labels.clone()
            labels[:scored] = IGNORE_INDEX
        return {INPUT_IDS: self.ids[start: start + b], LABELS: labels}


# ---------------------------------------------------------------- text -> ids


RULE = re.compile(r"(\S)\1{2,}")  # one character repeated: a heading underline


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each with its lines joined by single spaces; lines that only
    repeat one character ("*****", "-----": reStructuredText underlines) are dropped as decoration."""
    found = (" ".join(line.strip() for line in p.splitlines() if line.strip() and not RULE.fullmatch(line.strip()))
             for p in re.split(r"\n\s*\n", text))
    return [p for p in found if p]


def encode_stream(vocab: Vocab, text: str) -> list[int]:
    """The text as written where the vocabulary keeps its layout (characters, a byte-level BPE such as GPT-2's);
    else (WordPiece, which drops whitespace) paragraph by paragraph, [EOS] after each."""
    if vocab.keeps_whitespace:
        return vocab.encode(text)
    vocab.require("eos")
    ids = []
    for piece_ids in vocab.encode_batch(paragraphs(text)):
        ids += piece_ids + [vocab.eos_id]
    return ids


def _snapped(text: str, cuts: list[int], pattern: re.Pattern) -> list[int]:
    """Each cut moved just past the next match of ``pattern`` (kept where none follows)."""
    found = [pattern.search(text, c) if 0 < c < len(text) else None for c in cuts]
    return [m.end() if m else c for m, c in zip(found, cuts)]


def split_points(text: str, val_fraction: float, test_fraction: float, snap_to_lines: bool) -> list[int]:
    """Character offsets [0, a, b, len(text)] of the train / val / test parts. ``snap_to_lines`` moves each cut just
    past the next line break, so no line is split; where that would empty a part (a text of one long line), just
    past the next whitespace instead, so no word is split."""
    n = len(text)
    cuts = [int(n * (1 - val_fraction - test_fraction)), int(n * (1 - test_fraction))]
    if snap_to_lines:
        raw, lines = [0, *cuts, n], _snapped(text, cuts, re.compile("\n"))
        bounds = [0, *lines, n]
        emptied = any(raw[i] < raw[i + 1] and bounds[i] >= bounds[i + 1] for i in range(3))
        cuts = _snapped(text, cuts, re.compile(r"\s")) if emptied else lines
    return [0, *cuts, n]


# ---------------------------------------------------------------- the dataset


@register_data("text_lm")
def text_lm(files: str | list[str] | None = None, tokenizer: str = "char", vocab_size: int | None = None,
            min_frequency: int | None = None, lowercase: bool | None = None, block_size: int = 64,
            val_fraction: float = 0.1, test_fraction: float = 0.0) -> DataBundle:
    """Next-token prediction on ``files`` (None: the bundled Python reference manual), split by position.

    tokenizer: "char", "wordpiece" or a folder with a saved vocabulary (see the module docstring).
    vocab_size, min_frequency, lowercase: WordPiece training only (left out: 8000, 2, true); given with char or a
    folder they are refused unless they are that vocabulary's own (``vocab.check_learning_args``).
    block_size: tokens a window reads, the model's max_positions (DataBundle.model_args).
    val_fraction, test_fraction: the parts at the end of the text (test last); 0 leaves one out. Summing to 1
    they leave no training part: the whole text is scored, data to evaluate a run on (``xformer evaluate RUN
    data.args.files=OTHER data.args.val_fraction=1``). Its first token is then read after the vocabulary's
    [EOS] (the document separator; GPT-2's <|endoftext|>), or, without one, is context only.
    """
    check_sizes("data.args", block_size=block_size, vocab_size=vocab_size)
    check_sizes("data.args", minimum=0, min_frequency=min_frequency)
    check_fractions("data.args", include_one=True, val_fraction=val_fraction, test_fraction=test_fraction)
    if val_fraction + test_fraction > 1:
        raise ConfigError(f"data.args.val_fraction={val_fraction} and test_fraction={test_fraction} must be "
                          "in [0, 1] and sum to at most 1 (below 1 leaves a training part; 1 scores the whole text, to "
                          "evaluate a run on)")
    scored_only = val_fraction + test_fraction == 1
    if scored_only and tokenizer == "wordpiece":
        raise ConfigError("data.args.tokenizer=wordpiece learns its pieces from the training part, and "
                          f"val_fraction={val_fraction} with test_fraction={test_fraction} leaves none; give a saved "
                          "vocabulary (evaluate RUN uses the run's own) or leave a training part")
    text = read_text_files(files)
    # the vocabulary: characters of the whole text, a saved one, or (below) WordPiece learned on the train part
    learning = {"vocab_size": vocab_size, "min_frequency": min_frequency, "lowercase": lowercase}
    vocab = None if tokenizer == "wordpiece" else make_vocab(tokenizer, text, **learning)
    if isinstance(vocab, CharVocab) and tokenizer != "char":  # a saved one: all it lacks named, not one split's
        vocab.encode(text)
    bounds = split_points(text, val_fraction, test_fraction, snap_to_lines=not isinstance(vocab, CharVocab))
    parts = [text[bounds[i]: bounds[i + 1]] for i in range(3)]
    if vocab is None:
        vocab = make_vocab("wordpiece", parts[0], **learning)
    streams = [encode_stream(vocab, part) for part in parts]
    # no training part before the scored text: it starts a document, after [EOS] where there is one
    lead = [vocab.eos_id] if scored_only and vocab.eos_id is not None else []
    ids = torch.tensor(lead + [i for s in streams for i in s], dtype=torch.long)
    a = len(lead) + len(streams[0])
    b = a + len(streams[1])
    if not scored_only and a < block_size + 1:
        raise ConfigError(f"the training part has {a} tokens, fewer than one window of block_size + 1 = "
                          f"{block_size + 1}; give more text or a smaller data.args.block_size")

    def eval_split(first: int, last: int) -> EvalWindows | None:
        first = max(first, 1)
        if last <= first:
            return None
        return EvalWindows(ids, first, last, block_size)

    val, test = eval_split(a, b), eval_split(b, len(ids))
    if val_fraction > 0 and val is None or test_fraction > 0 and test is None:
        raise ConfigError("a val / test part holds no tokens; give more text or a larger val_fraction / test_fraction")

    counts = {}  # split -> (tokens, characters) scored
    for split, first, last, part in (("val", a, b, parts[1]), ("test", b, len(ids), parts[2])):
        context_only = ids[:1].tolist() if first == 0 else []  # the stream's first token: nothing to predict it from
        counts[split] = (last - first - len(context_only),
                         len(part) - len(vocab.decode(context_only, skip_special_tokens=False)))

    def loss_metrics(split: str, ce: float) -> dict[str, float]:
        """Perplexity and bits from the trainer's mean loss over every token of the split."""
        tokens, chars = counts[split]
        return {"perplexity": perplexity(ce), "bits_per_token": bits_per_token(ce),
                "bits_per_character": bits_per_character(ce, tokens, chars)}

    def save(run_dir: Path) -> None:
        vocab.save(Path(run_dir) / "tokenizer")
        summary = {"corpus": files if files else corpus_name(), "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size,
                   "block_size": block_size, "tokens": {"train": len(streams[0]), "val": b - a, "test": len(ids) - b},
                   "characters": {"train": len(parts[0]), "val": len(parts[1]), "test": len(parts[2])}}
        (Path(run_dir) / "data.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")

    return DataBundle(train=None if scored_only else TrainWindows(ids[:a], block_size), val=val, test=test,
                      loss_metrics=loss_metrics, save=save,
                      model_args={"tokenizer": {"vocab_size": vocab.vocab_size, "max_positions": block_size}})


__all__ = ["token_digest", "TrainWindows", "EvalWindows", "paragraphs", "encode_stream", "split_points", "text_lm"]
