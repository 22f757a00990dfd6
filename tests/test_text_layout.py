"""A vocabulary that keeps the text's layout (GPT-2's byte-level BPE, imported from a Hugging Face folder) reads
a language-modelling text as written, as Hugging Face's run_clm and nanoGPT feed GPT-2: line breaks and
indentation are tokens, and GPT-2's own <|endoftext|> between documents is the end-of-text token. WordPiece,
which keeps no whitespace, still reads paragraphs with [EOS] after each (tests/test_text_lm.py).

The reference is the folder's own tokenizer (``tokenizers.Tokenizer.from_file``, what GPT2TokenizerFast wraps):
the run's stream must be its ids of each part of the text."""
from __future__ import annotations

import json

import pytest
import torch

from xformer.data.corpus import read_text_files
from xformer.data.text import encode_stream, text_lm
from xformer.data.token_file import encoded_chunks, token_files, write_text_corpus
from xformer.data.vocab import load_vocab
from xformer.interop.pretrained import hf_tokenizer

EOT = "<|endoftext|>"
DOCS = ["def add(a, b):\n    return a + b\n\n\nclass Point:\n\tx = 1\n",
        "ROMEO:\nBut soft, what light\n  through yonder window breaks?\n\n-----\n",
        "a list:\n - one\n - two\n\nthe end.\n", "saved on Windows:\r\nline\r\n\r\n  end\r\n"]
TEXT = (EOT + "\n").join(DOCS * 6)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """The tokenizer files and config.json of a GPT-2 folder: a byte-level BPE with GPT-2's special token."""
    from tokenizers import ByteLevelBPETokenizer

    folder = tmp_path_factory.mktemp("gpt2_tokenizer")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TEXT], vocab_size=320, min_frequency=1, special_tokens=[EOT], show_progress=False)
    bpe.save(str(folder / "tokenizer.json"))
    eot = bpe.token_to_id(EOT)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "bos_token_id": eot, "eos_token_id": eot}))
    (folder / "special_tokens_map.json").write_text(json.dumps({"eos_token": EOT, "bos_token": EOT}))
    return folder


@pytest.fixture(scope="module")
def reference(gpt2_folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(gpt2_folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def vocab_dir(gpt2_folder, tmp_path_factory):
    """The run's vocabulary as ``init_from: hf:`` saves it (interop/pretrained.py ``Pretrained.vocabulary``)."""
    from xformer.interop.pretrained import Pretrained

    tokenizer, renamed = hf_tokenizer(gpt2_folder, json.loads((gpt2_folder / "config.json").read_text()))
    assert renamed == {EOT: "[EOS]"}
    folder = tmp_path_factory.mktemp("run_tokenizer")
    Pretrained("hf:x", "gpt2", None, {}, tokenizer, renamed).vocabulary().save(folder)
    return folder


def test_gpt2_vocabulary_keeps_whitespace_and_reads_its_end_of_text_token(vocab_dir, reference):
    vocab = load_vocab(vocab_dir)  # the aliases survive saving
    assert vocab.keeps_whitespace and vocab.eos_id == reference.token_to_id(EOT)
    text = DOCS[0] + EOT + DOCS[1]
    assert vocab.encode(text) == reference.encode(text).ids  # <|endoftext|> is one id, not its characters
    assert vocab.encode(text).count(vocab.eos_id) == 1
    assert vocab.encode_batch([text, DOCS[2]]) == [reference.encode(t).ids for t in (text, DOCS[2])]
    assert encode_stream(vocab, text) == reference.encode(text).ids  # no paragraphs, no [EOS] added
    assert vocab.decode(vocab.encode(DOCS[0])) == DOCS[0]


def test_text_lm_reads_a_byte_level_text_as_written(vocab_dir, reference, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8", newline="")
    data = text_lm(files=[str(path)], tokenizer=str(vocab_dir), block_size=16, val_fraction=0.2, test_fraction=0.1)
    text = TEXT.replace("\r\n", "\n")  # a file is read as Python reads text (nanoGPT's open().read()): "\n" lines
    # the cuts: just past the line break after 70% and 90% of the characters (split_points)
    a = text.find("\n", int(len(text) * 0.7)) + 1
    b = text.find("\n", int(len(text) * 0.9)) + 1
    expected = [reference.encode(part).ids for part in (text[:a], text[a:b], text[b:])]
    # each part is the reference's ids of its text: line breaks, indentation, the document separator
    assert data.train.ids.tolist() == expected[0]
    assert data.val.ids.tolist() == expected[0] + expected[1] + expected[2]
    newline, eot = reference.token_to_id("\u010a"), reference.token_to_id(EOT)  # GPT-2's byte for "\n"
    assert expected[0].count(eot) >= 3 and newline in expected[0]
    for split, part in (("val", text[a:b]), ("test", text[b:])):  # bits per character count the text as written
        metrics = data.loss_metrics(split, 1.0)
        tokens = len(expected[1] if split == "val" else expected[2])
        assert metrics["bits_per_character"] == pytest.approx(tokens / len(part) / 0.6931471805599453)


def test_token_file_chunks_give_the_whole_texts_ids(vocab_dir, reference, tmp_path):
    vocab = load_vocab(vocab_dir)
    for chars in (*range(1, 60, 4), 1 << 20):  # cut before a line's first letter: the same ids
        assert [i for chunk in encoded_chunks(vocab, TEXT, chars=chars) for i in chunk] == reference.encode(TEXT).ids
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    data = text_lm(files=[str(tmp_path / "corpus.txt")], tokenizer=str(vocab_dir), block_size=16, val_fraction=0.2)
    write_text_corpus(tmp_path / "prepared", read_text_files(tmp_path / "corpus.txt"), tokenizer=str(vocab_dir),
                      val_fraction=0.2)
    _, files = token_files(tmp_path / "prepared")
    assert files["train"].read(0, len(files["train"])).tolist() == data.train.ids.tolist()
    assert files["val"].read(0, len(files["val"])).tolist() == data.val.ids[len(data.train.ids):].tolist()


def test_a_gpt2_fine_tune_trains_on_the_text_as_written(gpt2_folder, reference, tmp_path, capsys):
    """Through the CLI: ``--init-from hf:`` a GPT-2 folder on a text file; the run's token counts are the folder
    tokenizer's of each part, and its saved vocabulary reads <|endoftext|> as one token."""
    transformers = pytest.importorskip("transformers")
    import yaml

    from xformer.cli import main

    folder = tmp_path / "gpt2"
    folder.mkdir()
    for name in ("tokenizer.json", "special_tokens_map.json"):
        (folder / name).write_bytes((gpt2_folder / name).read_bytes())
    eot = reference.token_to_id(EOT)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=reference.get_vocab_size(), n_positions=32, n_embd=16, n_layer=1, n_head=2, bos_token_id=eot,
        eos_token_id=eot)).save_pretrained(folder)
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(yaml.safe_dump({
        "data": {"name": "text_lm", "args": {"files": [str(tmp_path / "corpus.txt")], "block_size": 16,
                                             "val_fraction": 0.2}},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "warmup_steps": 0}}))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--init-from", f"hf:{folder}", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    text = TEXT.replace("\r\n", "\n")
    a = text.find("\n", int(len(text) * 0.8)) + 1
    tokens = json.loads((run / "data.json").read_text())["tokens"]
    assert tokens["train"] == len(reference.encode(text[:a]).ids)
    assert tokens["val"] == len(reference.encode(text[a:]).ids)
    assert main(["tokenizer", "encode", str(run), "the end.\n" + EOT]) == 0
    assert json.loads(capsys.readouterr().out)["ids"] == reference.encode("the end.\n" + EOT).ids
    assert main(["tokenizer", "encode", str(folder), "the end.\n" + EOT]) == 0  # the Hugging Face folder itself
    assert json.loads(capsys.readouterr().out)["ids"] == reference.encode("the end.\n" + EOT).ids
