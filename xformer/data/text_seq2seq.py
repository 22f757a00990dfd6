"""Encoder-decoder data over real text: ``text_seq2seq`` (rules shared with the other text datasets:
text_common.py).

text_seq2seq
  ``files``: text files of ``source<TAB>target`` lines (no header; blank lines skipped).
  Default (files None), word reversal: each distinct prose sentence of the corpus is cut into
      consecutive pieces of ``max_words`` words (a last piece of fewer than ``min_words`` words
      is dropped); source = the piece, target = its words in reverse order
      ("the value is used." -> "used. is value the").
  Items: src_ids = source (no specials), input_ids = [BOS] target, labels = target [EOS]; each
      side truncated to max_length tokens. evaluate: greedy decoding through the KV cache from
      [BOS] alone, stopping at [EOS]; token_accuracy over the target tokens and [EOS], exact_match
      over whole targets.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..batch import INPUT_IDS, LABELS, SRC_IDS, SRC_MASK
from ..errors import ConfigError
from ..generation.decoding import greedy
from ..heads.lm import IGNORE_INDEX
from .corpus import corpus_name, read_text_files
from .registry import DataBundle, register_data
from .text_common import (Items, build_vocab, check_vocab_args, default_task_words, evaluates_only, id_tensor,
                          pad_collate, prose_sentences, save_vocab, seeded_generator, split_indices, text_model_args)


def read_pairs(paths: str | list[str]) -> list[tuple[str, str]]:
    """(source, target) of every ``source<TAB>target`` line."""
    pairs = []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        text = read_text_files(path)
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if "\t" not in line:
                raise ConfigError(f"{path}:{number}: no tab in the line; each line must be source<TAB>target")
            source, target = line.split("\t", 1)
            pairs.append((source.strip(), target.strip()))
    return pairs


def reversal_pairs(text: str, min_words: int, max_words: int) -> list[tuple[str, str]]:
    """The default task: prose sentences cut into pieces of max_words words, each -> its words reversed."""
    pairs = []
    for s in prose_sentences(text):
        words = s.split()
        for start in range(0, len(words), max_words):
            piece = words[start: start + max_words]
            if len(piece) >= min_words:
                pairs.append((" ".join(piece), " ".join(reversed(piece))))
    return list(dict.fromkeys(pairs))


@register_data("text_seq2seq")
def text_seq2seq(files: str | list[str] | None = None, tokenizer: str = "wordpiece", vocab_size: int | None = None,
                 min_frequency: int | None = None, lowercase: bool | None = None, max_length: int = 64,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, min_words: int | None = None,
                 max_words: int | None = None, seed: int = 0) -> DataBundle:
    """Teacher-forced encoder-decoder pairs from TSV files, or the default word-reversal task."""
    check_vocab_args(vocab_size, min_frequency, max_length)
    min_words, max_words = default_task_words(files, min_words, max_words, (3, 8))
    pairs = read_pairs(files) if files else reversal_pairs(read_text_files(None), min_words, max_words)
    parts = [[pairs[i] for i in part] for part in split_indices(len(pairs), val_fraction, test_fraction,
                                                               seeded_generator(seed, 0))]
    vocab = build_vocab(tokenizer, [t for pair in parts[0] for t in pair], vocab_size, min_frequency, lowercase,
                        "bos", "eos")
    bos, eos = vocab.bos_id, vocab.eos_id

    splits = []
    for part in parts:
        sources, targets = vocab.encode_batch([p[0] for p in part]), vocab.encode_batch([p[1] for p in part])
        items = [{SRC_IDS: id_tensor(s[:max_length] or [vocab.pad_id]),  # an empty source still needs one token
                  INPUT_IDS: id_tensor([bos] + t[:max_length]), LABELS: id_tensor(t[:max_length] + [eos])}
                 for s, t in zip(sources, targets)]
        splits.append(Items(items) if items else None)
    if splits[0] is None and not evaluates_only(val_fraction, test_fraction):
        raise ConfigError("the training split is empty; give more pairs or smaller val/test fractions")

    def evaluate(model, batches) -> dict[str, float]:
        correct = total = exact = rows = 0
        for batch in batches:
            labels = batch[LABELS]
            prompt = {SRC_IDS: batch[SRC_IDS], SRC_MASK: batch[SRC_MASK],
                      INPUT_IDS: torch.full((len(labels), 1), bos, device=labels.device)}
            predicted = greedy(model, prompt, max_new_tokens=labels.shape[1], eos_id=eos)
            # rows that all stopped early come back shorter: pad with a value no label holds
            predicted = torch.nn.functional.pad(predicted, (0, labels.shape[1] - predicted.shape[1]), value=-1)
            real = labels != IGNORE_INDEX
            hit = (predicted == labels) & real
            correct, total = correct + int(hit.sum()), total + int(real.sum())
            exact, rows = exact + int((hit | ~real).all(1).sum()), rows + len(labels)
        return {"token_accuracy": correct / max(total, 1), "exact_match": exact / max(rows, 1)}

    summary = {"corpus": files if files else f"word reversal of {corpus_name()} sentences", "tokenizer": vocab.kind,
               "vocab_size": vocab.vocab_size, "max_length": max_length, "items": [len(p) for p in parts]}
    return DataBundle(*splits, collate=lambda items: pad_collate(items, vocab.pad_id), evaluate=evaluate,
                      save=save_vocab(vocab, summary), model_args=text_model_args(vocab, max_length + 1))


__all__ = ["text_seq2seq", "read_pairs", "reversal_pairs"]
