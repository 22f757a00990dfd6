"""What the text datasets share (text_mlm.py, text_classification.py, text_seq2seq.py): the rules
common to all three.

  Text: ``files`` (None: the Python reference manual bundled with CPython, see corpus.py).
  Sentences: the text is cut at blank lines into paragraphs (their lines joined by spaces; lines
      that repeat one character, reST heading underlines such as "*****", dropped), and each
      paragraph after ".", "!" or "?" followed by a space and a capital, quote or bracket.
      "Prose" sentences (the default tasks' material) start with a capital, hold a lowercase
      letter, and end with a "." that is their only ".", "!" or "?" (no grammar rules, code, headings).
  Splits: a seeded permutation (``seed``) sends ``val_fraction`` / ``test_fraction`` of the units
      (MLM documents; classification rows, label by label; default-task sentences; seq2seq pairs)
      to val / test, the rest to train.
  Vocabulary (``tokenizer``): "wordpiece" is learned on the train split's text only
      (``vocab_size``, ``min_frequency``, ``lowercase``); a folder is a saved vocabulary, e.g.
      runs/bert_mlm/tokenizer of a pre-training run, which a fine-tuning run must reuse.
      The run folder gets it back as RUN_DIR/tokenizer, with data.json (sizes, labels).
  Batches: right-padded with [PAD] to the longest item; ``attention_mask`` (and ``src_mask``)
      True on real tokens; padded labels are -100 (ignored by the loss).
  model_args: tokenizer vocab_size, max_positions, pad_id (and head n_classes).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..batch import ATTENTION_MASK, INPUT_IDS, LABELS, SRC_IDS, SRC_MASK, TOKEN_TYPE_IDS
from ..errors import ConfigError
from ..heads.lm import IGNORE_INDEX
from ..registry import check_fractions, check_min_max, check_sizes
from .text import paragraphs
from .vocab import SPECIAL_TOKENS, Vocab, make_vocab

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
PROSE = re.compile(r"[A-Z][^.!?]*[a-z][^.!?]*\.")  # a capital, a lowercase letter, one final "."


def sentences(paragraph: str) -> list[str]:
    return [s for s in SENTENCE_END.split(paragraph) if s]


def prose_sentences(text: str) -> list[str]:
    """Distinct prose sentences (capital first, one final "." and no other), in order of first appearance."""
    found = (s for p in paragraphs(text) for s in sentences(p) if PROSE.fullmatch(s))
    return list(dict.fromkeys(found))


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int | torch.Generator
                  ) -> tuple[list[int], list[int], list[int]]:
    """Sorted (train, val, test) indices of n units: a seeded permutation, val first, then test. Fractions summing
    to 1 leave no training part: data to evaluate a run on (``evaluates_only``)."""
    check_fractions("data.args", include_one=True, val_fraction=val_fraction, test_fraction=test_fraction)
    if val_fraction + test_fraction > 1:
        raise ConfigError(f"data.args.val_fraction={val_fraction} and test_fraction={test_fraction} must be in "
                          "[0, 1] and sum to at most 1 (below 1 leaves a training part; 1 scores every example, to "
                          "evaluate a run on)")
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist()
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return sorted(order[n_val + n_test:]), sorted(order[:n_val]), sorted(order[n_val: n_val + n_test])


def evaluates_only(val_fraction: float, test_fraction: float) -> bool:
    """Whether the fractions leave no training part: every example scored (``xformer evaluate RUN
    data.args.files=OTHER data.args.test_fraction=1``), and ``xformer train`` refuses the data."""
    return val_fraction + test_fraction == 1


def check_vocab_args(vocab_size: int, min_frequency: int, max_length: int) -> None:
    check_sizes("data.args", vocab_size=vocab_size, max_length=max_length)
    check_sizes("data.args", minimum=0, min_frequency=min_frequency)


def default_task_words(files, min_words: int | None, max_words: int | None, defaults: tuple[int, int]
                       ) -> tuple[int, int]:
    """``min_words`` / ``max_words`` of the default task (no ``files``), left out: ``defaults``. They choose the
    corpus' sentences; given with files, which they would not filter, they are refused."""
    given = [f"{key}={value}" for key, value in (("min_words", min_words), ("max_words", max_words))
             if value is not None]
    if files and given:
        raise ConfigError(f"data.args.{' and '.join(given)} choose{'s' if len(given) == 1 else ''} the sentences of "
                          "the default task, but data.args.files are read whole (no text is filtered by its words); "
                          "leave them out (data.args.KEY=null drops a recipe's)")
    low, high = (defaults[0] if min_words is None else min_words), (defaults[1] if max_words is None else max_words)
    check_min_max("data.args", "min_words", low, "max_words", high)
    return low, high


def seeded_generator(seed: int, part: int) -> torch.Generator:
    """Independent seeded streams for the split permutation (part 0) and each split's draws."""
    return torch.Generator().manual_seed(1000 * seed + part)


def build_vocab(tokenizer: str, train_texts: list[str], vocab_size: int, min_frequency: int, lowercase: bool,
                *roles: str) -> Vocab:
    """WordPiece (or characters) learned on the train split's text, or the vocabulary saved in a folder."""
    if tokenizer in ("wordpiece", "char") and not train_texts:
        raise ConfigError(f"the training split holds no text to learn a {tokenizer} vocabulary from; give more text or "
                          "smaller val/test fractions, or (data to evaluate a run on) a saved vocabulary: evaluate "
                          "RUN reads the run's own")
    vocab = make_vocab(tokenizer, "\n".join(train_texts), vocab_size, min_frequency, lowercase,
                       char_specials=SPECIAL_TOKENS)
    vocab.require("pad", *roles)
    return vocab


class Items(Dataset):
    """A list of items, each a dict of 1-D id tensors and scalars."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def digest(self) -> str:
        """SHA-256 of every item's tensors in order: what a run records to tell its own data from other data of
        the same size, e.g. a table re-sorted between training and a resume (train/data_identity.py)."""
        h = hashlib.sha256()
        for item in self.items:
            for key in sorted(item):
                h.update(key.encode() + torch.as_tensor(item[key]).numpy().tobytes())
        return h.hexdigest()


def id_tensor(ids: list[int]) -> Tensor:
    return torch.tensor(ids, dtype=torch.long)


def pad_collate(items: list[dict], pad_id: int) -> dict[str, Tensor]:
    """Stack scalars; right-pad sequences to the longest ([PAD] for ids, -100 for labels, 0 for token
    types); add a boolean mask (True = real token) for input_ids and src_ids."""
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if values[0].dim() == 0:
            batch[key] = torch.stack(values)
            continue
        fill = IGNORE_INDEX if key == LABELS else 0 if key == TOKEN_TYPE_IDS else pad_id
        batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True, padding_value=fill)
        mask_key = {INPUT_IDS: ATTENTION_MASK, SRC_IDS: SRC_MASK}.get(key)
        if mask_key:
            lengths = torch.tensor([len(v) for v in values])
            batch[mask_key] = torch.arange(batch[key].shape[1])[None] < lengths[:, None]
    return batch


def save_vocab(vocab: Vocab, summary: dict):
    def save(run_dir: Path) -> None:
        vocab.save(Path(run_dir) / "tokenizer")
        Path(run_dir, "data.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return save


def text_model_args(vocab: Vocab, max_positions: int, **head) -> dict:
    return {"tokenizer": {"vocab_size": vocab.vocab_size, "max_positions": max_positions, "pad_id": vocab.pad_id},
            "head": head}


__all__ = ["sentences", "prose_sentences", "split_indices", "evaluates_only", "check_vocab_args", "default_task_words",
           "seeded_generator", "build_vocab", "Items", "id_tensor", "pad_collate", "save_vocab", "text_model_args"]
