"""Audit of the Hugging Face interop as a transformers user meets it: folders that are not what xformer reads
as they stand (a token or multiple-choice classifier, no tokenizer, a tokenizer or a config.json that is not
the weights') end in one line with exit status 2 from `xformer predict` / `generate` / `train --init-from`,
never in a traceback, and never load silently wrong. Every folder is built here, tiny, random init."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xformer.cli import main

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "quick", "brown", "fox", "cat", "sleeps", "."]


def bert_config(**extra):
    return transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32, **extra)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """bert_cls (a BertForSequenceClassification with its tokenizer); tok_cls / choice (token and multiple-choice
    classifiers, 3 labels); gpt2 (a GPT2LMHeadModel with a byte-level BPE tokenizer)."""
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("audit_interop")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(str(root / "vocab.txt"))._tokenizer)
    for name, cls, extra in (("bert_cls", transformers.BertForSequenceClassification, {"num_labels": 2}),
                             ("tok_cls", transformers.BertForTokenClassification, {"num_labels": 3}),
                             ("choice", transformers.BertForMultipleChoice, {"num_labels": 3})):
        cls(bert_config(**extra)).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the quick brown fox sleeps"] * 4, vocab_size=280, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    gpt2_tok = transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=len(gpt2_tok), n_positions=16, n_embd=16,
                                                         n_layer=1, n_head=2)).save_pretrained(root / "gpt2")
    gpt2_tok.save_pretrained(root / "gpt2")
    return root


def copy(root: Path, name: str, new: str) -> Path:
    shutil.rmtree(root / new, ignore_errors=True)
    return Path(shutil.copytree(root / name, root / new))


def one_line_error(capsys, argv, *words) -> str:
    capsys.readouterr()  # save_pretrained's progress bar
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xformer: error:") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.parametrize("name", ["tok_cls", "choice"])
def test_token_and_choice_classifiers_are_not_read_as_sequence_classifiers(root, name, capsys, monkeypatch):
    """Their `classifier` scores tokens / choices: predict refuses the folder in one line (was a traceback), and
    the encoder alone is the starting point (the classifier is never taken for the pooled [CLS]'s)."""
    from xformer.interop.pretrained import load_pretrained

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    one_line_error(capsys, ["predict", str(root / name), "-"], "without a classifier")
    model, _ = load_pretrained(f"hf:{root / name}")
    assert model.config.head.name != "classification"


def test_a_classifier_folder_without_tokenizer_files_is_refused_by_predict(root, capsys, monkeypatch):
    """As init_from and generate refuse it (was AttributeError: 'NoneType' object has no attribute 'encode_batch')."""
    folder = copy(root, "bert_cls", "no_tokenizer")
    for file in folder.glob("tokenizer*"):
        file.unlink()
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    one_line_error(capsys, ["predict", str(folder), "-"], "holds no tokenizer", "save_pretrained")

