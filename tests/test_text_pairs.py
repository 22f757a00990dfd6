"""Sentence-pair classification (GLUE's MRPC, QQP, MNLI, RTE): data.args.text_pair_column reads a second text
per row as BERT's [CLS] A [SEP] B [SEP] with token types 0 / 1, cut as Hugging Face's tokenizer cuts a pair
(truncation="longest_first"); a tiny model learns a task only the second text decides; predict reads both
columns."""
from __future__ import annotations

import csv
import io
import json
import random

import pytest
import yaml

from xformer.cli import main
from xformer.data.text_classification import classification_item

WORDS = "red green blue cat dog bird sun moon tree fish".split()


def rows(n: int, seed: int):
    """(a, b, label): a is random words, b the words of a class ("colour": red, green, blue; "animal": cat, dog,
    bird, fish): only the second text of a pair decides, so a model that did not read it stays at chance."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "colour" if i % 2 else "animal"
        b = rng.sample(["red", "green", "blue"] if label == "colour" else ["cat", "dog", "bird", "fish"], 2)
        out.append((" ".join(rng.sample(WORDS, 3)), " ".join(b), label))
    return out


def table(data) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sentence1", "sentence2", "label"])
    writer.writerows(data)
    return out.getvalue()


def test_pair_items_equal_hugging_faces_tokenizer():
    """Against transformers' PreTrainedTokenizerFast on the same tokenizers.Tokenizer with BERT's pair template (what
    xformer export writes for a BERT run, export.py), truncation="longest_first"."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, processors

    from xformer.data.vocab import WordPieceVocab

    vocab = WordPieceVocab.train([" ".join(WORDS)] * 3 + ["a b c d e f g"], vocab_size=60, min_frequency=1)
    tokenizer = Tokenizer.from_str(vocab.tokenizer.to_str())
    cls, sep = vocab.cls_id, vocab.sep_id
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    for a, b, max_length in (("red green", "blue cat dog bird sun", 7), ("red green blue cat dog", "sun", 6),
                             ("red green blue", "cat dog bird", 7), ("red", "cat", 16)):
        item = classification_item(vocab, vocab.encode(a), max_length, vocab.encode(b))
        ref = hf(a, b, truncation="longest_first", max_length=max_length, return_token_type_ids=True)
        assert item["input_ids"].tolist() == ref["input_ids"], (a, b, max_length)
        assert item["token_type_ids"].tolist() == ref["token_type_ids"]


def test_a_pair_task_trains_evaluates_and_predicts(tmp_path, capsys):
    (tmp_path / "train.csv").write_text(table(rows(240, 0)))
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64},
                        "tokenizer": {"name": "bert_text"}, "head": {"name": "classification"}},
              "data": {"name": "text_classification",
                       "args": {"files": str(tmp_path / "train.csv"), "text_column": "sentence1",
                                "text_pair_column": "sentence2", "vocab_size": 40, "min_frequency": 1,
                                "max_length": 12}},
              "train": {"steps": 60, "batch_size": 16, "lr": 3e-3, "eval_every": 60, "warmup_steps": 5}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test_accuracy"] >= 0.9, metrics  # only the second text decides

    new = rows(20, 1)
    (tmp_path / "new.csv").write_text(table(new))
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "new.csv")]) == 0
    out = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["text"], r["text_pair"]) for r in out] == [(a, b) for a, b, _ in new]
    assert sum(r["class"] == label for r, (_, _, label) in zip(out, new)) >= 18
    assert main(["predict", str(tmp_path / "run"), "-"]) == 2
    err = capsys.readouterr().err
    assert "classifies pairs of texts ('sentence1', 'sentence2')" in err and err.count("\n") == 1
