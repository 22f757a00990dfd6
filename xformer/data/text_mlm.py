"""BERT pre-training data over real text: ``text_mlm`` (rules shared with the other text datasets:
text_common.py).

text_mlm (Devlin et al. 2019, Sec. 3.1 and A.1)
  Documents: consecutive paragraphs grouped until they hold ``document_chars`` characters (with
      ``line_by_line``: each line), the unit of the split, so that no text is shared between splits; a
      val / test fraction that gets no document is refused.
  Segments: a document's sentences packed greedily, in order, into segments of at most L tokens
      (a longer sentence is cut into L-token pieces); segment k + 1 continues segment k.
      Without NSP:  [CLS] A [SEP]                     L = max_length - 2, token types all 0
      With NSP:     [CLS] A [SEP] B [SEP]             L = (max_length - 3) // 2, types 0 for
                    [CLS] A [SEP] and 1 for B [SEP]; one item per segment A that has a successor
                    in its document; with probability 1/2, B = that successor and
                    next_sentence_label = 0 ("is next"), otherwise B = a uniformly drawn segment
                    of the same split other than A and its successor, label 1 ("random").
                    Pairs are drawn once, with a generator seeded from ``seed``.
  Masking (data/mlm.py): 15% of the non-special tokens are targets; 80% become [MASK], 10% a
      random id (any of the vocabulary, as in BERT), 10% stay. Train: a fresh mask per batch in the
      collate, drawn from torch's global RNG (seeded by train.seed, saved in checkpoints, so runs resume exactly).
      Val / test: one mask per item drawn at build time with a seeded generator, so every
      evaluation scores the same positions. Special tokens are never targets.
  evaluate: mlm_accuracy = correct masked predictions / masked tokens; nsp_accuracy with a
      masked_lm_nsp head and nsp data.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..batch import INPUT_IDS, LABELS, NEXT_SENTENCE_LABEL, TOKEN_TYPE_IDS
from ..errors import ConfigError
from ..heads.lm import IGNORE_INDEX
from ..registry import check_sizes
from .corpus import corpus_name, read_text_files
from .mlm import mask_tokens
from .registry import DataBundle, register_data
from .text import paragraphs
from .text_common import (Items, build_vocab, check_vocab_args, evaluates_only, id_tensor, pad_collate,
                          save_vocab, seeded_generator, sentences, split_indices, text_model_args)
from .vocab import Vocab


def documents(text: str, document_chars: int, line_by_line: bool = False) -> list[list[str]]:
    """Consecutive paragraphs grouped until each group holds ``document_chars`` characters; its sentences.
    ``line_by_line``: every non-empty line is a document of its own (Hugging Face run_mlm's --line_by_line: one
    text per line, as a corpus of reviews or tweets holds them), whatever its length."""
    if line_by_line:
        return [sentences(line.strip()) for line in text.splitlines() if line.strip()]
    docs, current, size = [], [], 0
    for p in paragraphs(text):
        current += sentences(p)
        size += len(p)
        if size >= document_chars:
            docs.append(current)
            current, size = [], 0
    if current:
        docs.append(current)
    return docs


def pack_segments(docs: list[list[list[int]]], budget: int) -> tuple[list[list[int]], list[int]]:
    """Each document's sentence ids packed in order into segments of <= budget tokens; (segments, document)."""
    segments, owner = [], []
    for d, sents in enumerate(docs):
        current = []
        for ids in sents:
            for start in range(0, len(ids), budget):  # a sentence longer than the budget is cut
                piece = ids[start: start + budget]
                if current and len(current) + len(piece) > budget:
                    segments.append(current)
                    owner.append(d)
                    current = []
                current = current + piece
        if current:
            segments.append(current)
            owner.append(d)
    return segments, owner


def mlm_items(segments: list[list[int]], owner: list[int], vocab: Vocab, nsp: bool, g: torch.Generator
              ) -> list[dict]:
    cls, sep = [vocab.cls_id], [vocab.sep_id]
    if not nsp:
        return [{INPUT_IDS: id_tensor(cls + s + sep), TOKEN_TYPE_IDS: torch.zeros(len(s) + 2, dtype=torch.long)}
                for s in segments]
    n, items = len(segments), []
    if n < 3:
        raise ConfigError(f"next-sentence prediction needs at least 3 segments in each split, got {n}; "
                          "give more text or set data.args.nsp=false")
    for k in range(n - 1):
        if owner[k + 1] != owner[k]:
            continue  # the last segment of a document has no successor to pair with
        if torch.rand((), generator=g) < 0.5:
            b, label = k + 1, 0
        else:  # uniform over the n - 2 segments other than k and k + 1
            r = int(torch.randint(n - 2, (), generator=g))
            b, label = (r if r < k else r + 2), 1
        a, bb = segments[k], segments[b]
        items.append({INPUT_IDS: id_tensor(cls + a + sep + bb + sep),
                      TOKEN_TYPE_IDS: id_tensor([0] * (len(a) + 2) + [1] * (len(bb) + 1)),
                      NEXT_SENTENCE_LABEL: torch.tensor(label)})
    return items


def fix_masks(items: list[dict], vocab: Vocab, g: torch.Generator) -> None:
    """Give each evaluation item one mask for good (input_ids masked, labels), drawn from ``g``."""
    for item in items:
        item[INPUT_IDS], item[LABELS] = mask_tokens(item[INPUT_IDS], vocab.mask_id, vocab.vocab_size,
                                                    vocab.special_ids, generator=g)


@register_data("text_mlm")
def text_mlm(files: str | list[str] | None = None, tokenizer: str = "wordpiece", vocab_size: int | None = None,
             min_frequency: int | None = None, lowercase: bool | None = None, max_length: int = 128, nsp: bool = False,
             document_chars: int | None = None, val_fraction: float = 0.1, test_fraction: float = 0.0,
             seed: int = 0, line_by_line: bool = False) -> DataBundle:
    """BERT pre-training data: masked LM on packed sentence segments, optionally with next-sentence pairs.
    line_by_line: each line its own document (``documents``), whatever ``document_chars`` (left out: 2000), which
    is refused with it."""
    check_vocab_args(vocab_size, min_frequency, max_length)
    if line_by_line and document_chars is not None:
        raise ConfigError(f"data.args.document_chars={document_chars} groups paragraphs into documents, but "
                          "line_by_line=true makes each line a document whatever its length; leave one of them out")
    document_chars = 2000 if document_chars is None else document_chars
    check_sizes("data.args", document_chars=document_chars)
    if max_length < (7 if nsp else 3):
        raise ConfigError(f"data.args.max_length={max_length} leaves no room for text beside [CLS]/[SEP]")
    text = read_text_files(files)
    docs = documents(text, document_chars, line_by_line)
    parts = split_indices(len(docs), val_fraction, test_fraction, seeded_generator(seed, 0))
    vocab = build_vocab(tokenizer, [s for i in parts[0] for s in docs[i]], vocab_size, min_frequency, lowercase,
                        "cls", "sep", "mask")
    budget = (max_length - 3) // 2 if nsp else max_length - 2

    splits = []
    for k, part in enumerate(parts):
        sents = [docs[i] for i in part]
        flat = vocab.encode_batch([s for doc in sents for s in doc])
        ids, start = [], 0
        for doc in sents:  # back into documents of sentence ids
            ids.append(flat[start: start + len(doc)])
            start += len(doc)
        g = seeded_generator(seed, k + 1)
        items = mlm_items(*pack_segments(ids, budget), vocab, nsp, g) if part else []
        if k > 0:
            fix_masks(items, vocab, g)
        splits.append(Items(items) if items else None)
    if splits[0] is None and not evaluates_only(val_fraction, test_fraction):
        raise ConfigError("the training split holds no segment; give more text or smaller val/test fractions")
    for name, fraction, split in (("val", val_fraction, splits[1]), ("test", test_fraction, splits[2])):
        if fraction > 0 and split is None:  # documents are the unit of the split: too few leave it empty
            raise ConfigError(f"data.args.{name}_fraction={fraction} puts no document in the {name} split: the text "
                              f"gives {len(docs)} document(s) (blank-line separated paragraphs grouped to "
                              f"document_chars={document_chars} characters); for one text per line give "
                              "data.args.line_by_line=true, else a smaller document_chars or more text")

    def collate(items: list[dict]) -> dict[str, Tensor]:
        batch = pad_collate(items, vocab.pad_id)
        if LABELS not in batch:  # training: a fresh mask for every batch ([PAD] is special: never masked)
            batch[INPUT_IDS], batch[LABELS] = mask_tokens(batch[INPUT_IDS], vocab.mask_id, vocab.vocab_size,
                                                          vocab.special_ids)
        return batch

    def evaluate(model, batches) -> dict[str, float]:
        correct = total = nsp_correct = nsp_total = 0
        for batch in batches:
            out = model(batch)
            scored = batch[LABELS] != IGNORE_INDEX
            correct += int(((out["logits"].argmax(-1) == batch[LABELS]) & scored).sum())
            total += int(scored.sum())
            if "nsp_logits" in out and NEXT_SENTENCE_LABEL in batch:
                nsp_correct += int((out["nsp_logits"].argmax(-1) == batch[NEXT_SENTENCE_LABEL]).sum())
                nsp_total += len(batch[NEXT_SENTENCE_LABEL])
        metrics = {"mlm_accuracy": correct / max(total, 1)}
        if nsp_total:
            metrics["nsp_accuracy"] = nsp_correct / nsp_total
        return metrics

    summary = {"corpus": files if files else corpus_name(), "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size,
               "max_length": max_length, "nsp": nsp, "documents": [len(p) for p in parts],
               "items": [len(s) if s is not None else 0 for s in splits]}
    return DataBundle(*splits, collate=collate, evaluate=evaluate, save=save_vocab(vocab, summary),
                      model_args=text_model_args(vocab, max_length))


__all__ = ["text_mlm", "documents", "pack_segments", "mlm_items", "fix_masks"]
