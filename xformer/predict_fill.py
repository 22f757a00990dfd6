"""Fill-mask: a masked LM's run (head masked_lm or masked_lm_nsp: tasks/bert_mlm.yaml) predicts the token of
each [MASK] in new texts, as Hugging Face's ``pipeline("fill-mask")`` does:

    p = softmax(logits at the mask's position)      over the whole vocabulary, special tokens too (as HF)
    top-k = the k tokens of largest p, best first

A text is [CLS] text [SEP] with the run's saved vocabulary, cut to the model's positions as a text classifier's
texts are cut (``classification_ids``); a mask the cut would drop is refused in one line, not left out. The
inputs are those of a text classifier's run (predict_text.py: text files, tables, pandas frames, ``-``) plus
texts themselves: a string that is no file and holds [MASK] is a text (a misspelt file name holds none, so it is
still refused, never read as a text).

Rows, one per (text, mask, rank): file (the text's source; a text given itself: "text N", N its position among
the inputs), text, mask (1 = the text's first [MASK]), rank, token (the piece decoded alone: HF's token_str, a
WordPiece continuation keeping its ##), token_id, probability (HF's score) and sequence (the text with that token
in the mask's place, decoded as HF decodes it; with several masks the others stay [MASK], where HF's sequence
also keeps [CLS] and [SEP]).
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .batch import INPUT_IDS
from .config import ConfigError, load_yaml
from .heads.mlm import MASKED_LM_HEADS

MASK = "[MASK]"  # the mask token of every xformer vocabulary (data/vocab.py) and of BERT's


def fill_mask_info(run_dir: Path) -> dict | None:
    """{vocab, max_length} of a masked LM's run folder; None for a run of another head."""
    from .data.vocab import META_FILE, load_vocab

    config = load_yaml(run_dir / "config.yaml")
    model = config.get("model") or {}
    if (model.get("head") or {}).get("name") not in MASKED_LM_HEADS:
        return None
    if not (run_dir / "tokenizer" / META_FILE).is_file():
        raise ConfigError(f"{run_dir} is a masked LM's run without its tokenizer/ folder, which turns texts into "
                          "its ids; train it again (xformer train writes RUN_DIR/tokenizer)")
    vocab = load_vocab(run_dir / "tokenizer")
    vocab.require("cls", "sep", "mask")
    return {"vocab": vocab, "max_length": int(((model.get("tokenizer") or {}).get("args") or {})["max_positions"]),
            "name": str(run_dir)}


def fill_texts(inputs: Sequence, name: str = "the model") -> list[tuple[str, str]]:
    """(source, text) of each input: a string that is no file and holds [MASK] is the text "text N" (N its position
    among the inputs); anything else is read as a text classifier's inputs are (``predict_text.read_texts``).
    ``name``: the run or folder, named in errors."""
    from .predict_text import read_texts

    def given(item) -> bool:
        return isinstance(item, str) and item != "-" and not os.path.exists(item)

    for item in filter(given, inputs):
        if MASK not in item:  # a misspelt file name too: refused, never read as a text
            raise ConfigError(f"{item!r} is neither a file nor a text with a {MASK} ({name} is a masked LM, which "
                              f"fills masks); write {MASK} where the word to predict goes (its mask token), e.g. "
                              f"'the {MASK} sat on the mat', or give text files of such texts")
    return read_texts(inputs, given=given)


def masked_ids(vocab, texts: Sequence[tuple[str, str]], max_length: int, name: str = "the model"
               ) -> list[tuple[list[int], list[int]]]:
    """(ids of [CLS] text [SEP] cut to ``max_length``, the positions of its masks) of each text. The text is cut
    at each [MASK] and the parts encoded apart, as Hugging Face's tokenizers cut a text at a special token (a
    character vocabulary would otherwise spell it out)."""
    from .data.text_classification import classification_ids

    parts = [text.split(MASK) for _, text in texts]
    flat = vocab.encode_batch([p for ps in parts for p in ps])
    out, start = [], 0
    for (source, text), ps in zip(texts, parts):
        if len(ps) == 1:
            raise ConfigError(f"{source} ({text[:60]!r}) has no {MASK} ({name} is a masked LM, which fills masks); "
                              f"write {MASK} where the word to predict goes in every text (its mask token), e.g. "
                              f"'the {MASK} sat on the mat'")
        ids = []
        for k, piece in enumerate(flat[start: start + len(ps)]):
            ids += ([vocab.mask_id] if k else []) + piece
        start += len(ps)
        masks = [i for i, t in enumerate(ids) if t == vocab.mask_id]
        room = max_length - 2
        for n, i in enumerate(masks, 1):
            if i >= room:
                raise ConfigError(f"{source}: its mask {n} is piece {i + 1} of the text, past the {room} pieces the "
                                  f"model's {max_length} positions hold ([CLS] text [SEP]); shorten the text before "
                                  "it (what follows the last mask may be cut)")
        out.append((classification_ids(vocab, ids, max_length).tolist(), [i + 1 for i in masks]))
    return out


def filled_sequence(vocab, ids: list[int], several: bool) -> str:
    """The filled text (``ids``: [CLS] text [SEP]) as Hugging Face's pipeline decodes it: without special tokens
    for one mask; with several, the other masks kept (HF keeps the [CLS] and [SEP] around it too, dropped here)."""
    if not several:
        return vocab.decode(ids, skip_special_tokens=True)
    # the frame by position, a [SEP] predicted for a mask stays; a [PAD] goes, as HF drops the padding by id
    return vocab.decode([i for i in ids[1:-1] if i != vocab.pad_id], skip_special_tokens=False)


@torch.no_grad()
def predict_fill(model: torch.nn.Module, texts: Sequence[tuple[str, str]], info: dict, top_k: int = 5,
                 batch_size: int = 64, device: str | torch.device = "cpu") -> list[dict]:
    """One row per (text, mask, rank): {"file", "text", "mask", "rank", "token", "token_id", "probability",
    "sequence"} (the module's docstring); ``top_k`` at most the vocabulary's size."""
    from .data.text_common import id_tensor, pad_collate

    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    vocab = info["vocab"]
    # every text checked before the first forward
    items = masked_ids(vocab, texts, info["max_length"], info.get("name", "the model"))
    top_k = min(top_k, vocab.vocab_size)
    model = model.to(device).eval()
    rows = []
    for start in range(0, len(texts), batch_size):
        chunk = items[start: start + batch_size]
        batch = pad_collate([{INPUT_IDS: id_tensor(ids)} for ids, _ in chunk], vocab.pad_id)
        logits = model({k: v.to(device) for k, v in batch.items()})["logits"]
        for b, ((source, text), (ids, masks)) in enumerate(zip(texts[start: start + batch_size], chunk)):
            probs, tokens = logits[b, masks].float().softmax(dim=-1).topk(top_k, dim=-1)
            for n, (position, p_row, t_row) in enumerate(zip(masks, probs.tolist(), tokens.tolist()), 1):
                for rank, (p, t) in enumerate(zip(p_row, t_row), 1):
                    filled = ids[:position] + [t] + ids[position + 1:]
                    rows.append({"file": source, "text": text, "mask": n, "rank": rank,
                                 "token": vocab.decode([t], skip_special_tokens=False), "token_id": t,
                                 "probability": p, "sequence": filled_sequence(vocab, filled, len(masks) > 1)})
    return rows


FILL_COLUMNS = ["file", "text", "mask", "rank", "token", "token_id", "probability", "sequence"]


def fill_csv(rows: Sequence[dict]) -> str:
    """CSV text of ``predict_fill``'s rows, a row each (probability to 6 decimals, as predict writes classes')."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FILL_COLUMNS)
    for row in rows:
        writer.writerow([f"{row[c]:.6f}" if c == "probability" else row[c] for c in FILL_COLUMNS])
    return out.getvalue()


def fill_mask_run(runs: Sequence, inputs: Sequence, info: dict, top_k: int, batch_size: int, device,
                  checkpoint: str = "best") -> tuple[list[dict], str]:
    """(rows, CSV text) of ``predict.predict_run`` for a masked LM's run."""
    from .train.run import load_run_model

    if len(runs) > 1:
        raise ConfigError("--ensemble averages classifiers' probabilities; fill-mask predicts with one masked-LM run: "
                          f"give {runs[0]} alone")
    texts = fill_texts(inputs, info["name"])
    _, model = load_run_model(runs[0], checkpoint)
    rows = predict_fill(model, texts, info, top_k, batch_size, device)
    return rows, fill_csv(rows)


__all__ = ["MASK", "fill_mask_info", "fill_texts", "masked_ids", "predict_fill", "fill_csv", "fill_mask_run"]
