"""Causal LM on text: nanoGPT-style windows, every evaluation token scored once, vocabularies,
a tiny char GPT that learns, generation past the learned positions, and the tokenizer / generate commands."""
import json
import math
import shutil
from collections import Counter

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.data.corpus import default_corpus
from xformer.data.text import EvalWindows, encode_stream, paragraphs, text_lm
from xformer.data.vocab import CharVocab, WordPieceVocab, load_vocab
from xformer.generation import _continuation, generate, generate_text, max_positions

# a short real passage (the start of the bundled reference manual), repeated: a tiny model can learn it
PASSAGE = default_corpus()[:300]
REPEATED = PASSAGE * 12


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_line(capsys, argv):
    """Run the CLI; return its stderr, which must be exactly one `xformer: error:` line with exit status 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------- windows and splits


def test_train_windows_are_views_shifted_by_one(tmp_path):
    data = text_lm(files=write(tmp_path, "a.txt", REPEATED), block_size=16)
    ids = data.train.ids
    a = int(len(REPEATED) * 0.9)  # nanoGPT: the first 90% of the characters
    assert len(ids) == a and len(data.train) == a - 16
    for i in (0, 7, len(data.train) - 1):
        item = data.train[i]
        assert torch.equal(item["input_ids"], ids[i:i + 16]) and torch.equal(item["labels"], ids[i + 1:i + 17])
        assert torch.equal(item["input_ids"][1:], item["labels"][:-1])
        assert item["input_ids"].untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()  # a view
    vocab = CharVocab.from_text(REPEATED)
    assert vocab.decode(data.train[5]["labels"].tolist()) == REPEATED[6:22]


@pytest.mark.parametrize("val_fraction,test_fraction", [(0.1, 0.0), (0.13, 0.07)])
def test_eval_windows_score_every_token_exactly_once(tmp_path, val_fraction, test_fraction):
    data = text_lm(files=write(tmp_path, "a.txt", REPEATED), block_size=16, val_fraction=val_fraction,
                   test_fraction=test_fraction)
    vocab = CharVocab.from_text(REPEATED)
    full = torch.tensor(vocab.encode(REPEATED))
    n = len(REPEATED)
    bounds = {"val": (int(n * (1 - val_fraction - test_fraction)), int(n * (1 - test_fraction))),
              "test": (int(n * (1 - test_fraction)), n)}
    splits = ["val"] + (["test"] if test_fraction else [])
    assert (data.test is None) == (not test_fraction)
    for split in splits:
        windows: EvalWindows = getattr(data, split)
        first, last = bounds[split]
        assert (last - first) % 16, "the case with a shorter remainder window"
        scored = []
        for k in range(len(windows)):
            item = windows[k]
            start = windows.windows[k][0]
            assert item["input_ids"].shape == item["labels"].shape == (16,)
            assert torch.equal(item["input_ids"], full[start:start + 16])
            for j in torch.nonzero(item["labels"] != -100).flatten().tolist():
                assert item["labels"][j] == full[start + j + 1]  # the next character
                scored.append(start + j + 1)
        assert sorted(scored) == list(range(first, last))  # every token once, none twice, none outside


def test_char_vocab_is_the_text_characters(tmp_path):
    text = "To be, or not to be:\nthat is the question.\n" * 20
    data = text_lm(files=write(tmp_path, "a.txt", text), block_size=8)
    assert data.model_args == {"tokenizer": {"vocab_size": len(set(text)), "max_positions": 8}}
    data.save(tmp_path / "run")
    vocab = load_vocab(tmp_path / "run" / "tokenizer")
    assert isinstance(vocab, CharVocab) and vocab.specials == {} and "\n" in vocab.stoi
    assert vocab.itos == sorted(set(text)) and vocab.decode(vocab.encode(text)) == text
    assert json.loads((tmp_path / "run" / "data.json").read_text())["characters"]["val"] == len(text) - int(
        len(text) * 0.9)


def test_wordpiece_stream_has_eos_after_each_paragraph(tmp_path):
    text = "\n\n".join(f"The {w} statement\nis executed at line {i}." for i, w in
                       enumerate(["for", "while", "if", "with", "try", "return"] * 8)) + "\n"
    data = text_lm(files=write(tmp_path, "a.txt", text), tokenizer="wordpiece", vocab_size=120, min_frequency=1,
                   block_size=8, val_fraction=0.2)
    data.save(tmp_path / "run")
    vocab = load_vocab(tmp_path / "run" / "tokenizer")
    assert isinstance(vocab, WordPieceVocab) and data.model_args["tokenizer"]["vocab_size"] == vocab.vocab_size
    stream = data.val.ids.tolist()  # one stream: the train part, then val
    assert stream[:len(data.train.ids)] == data.train.ids.tolist()
    eos = vocab.eos_id
    assert stream[-1] == eos
    pieces = " ".join(vocab.decode(stream).split())  # specials skipped
    assert stream.count(eos) >= 48 and pieces.startswith("the for statement is executed at line 0.")
    # each paragraph, lines joined by a space, is followed by exactly one [EOS]
    chunks, current = [], []
    for i in stream:
        if i == eos:
            chunks.append(vocab.decode(current))
            current = []
        else:
            current.append(i)
    expected = [p.lower() for p in paragraphs(text)]
    assert len(chunks) in (len(expected), len(expected) + 1)  # +1: a cut may fall inside one paragraph
    assert chunks[:10] == expected[:10] and chunks[-3:] == expected[-3:]
    assert encode_stream(vocab, "a b\nc\n\nd") == vocab.encode("a b c") + [eos] + vocab.encode("d") + [eos]


def test_too_short_text_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="block_size"):
        text_lm(files=write(tmp_path, "a.txt", "short text"), block_size=64)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {{name: text_lm, args: {{files: {tmp_path / 'a.txt'}, block_size: 64}}}}\n"
                      "train: {steps: 1}\n")
    assert "block_size" in error_line(capsys, ["train", str(recipe), "--out", str(tmp_path / "run")])


# ---------------------------------------------------------------- a tiny char GPT that learns


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from xformer.train.config import ExperimentConfig
    from xformer.train.run import train_run

    folder = tmp_path_factory.mktemp("tiny")
    files = write(folder, "passage.txt", REPEATED)
    config = from_dict(ExperimentConfig, {
        "model": {"architecture": "decoder", "core": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64,
                                                      "bias": False, "qkv_bias": False},
                  "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
        "data": {"name": "text_lm", "args": {"files": files, "tokenizer": "char", "block_size": 32}},
        "train": {"steps": 150, "batch_size": 16, "lr": 1e-2, "warmup_steps": 10, "min_lr": 1e-3,
                  "eval_every": 150, "log_every": 50, "weight_decay": 0.0, "device": "cpu"}})
    metrics = train_run(config, folder / "run")
    return folder / "run", metrics


def test_tiny_char_gpt_learns_below_the_unigram_entropy(tiny_run):
    run_dir, metrics = tiny_run
    counts = Counter(REPEATED)
    unigram = -sum(c / len(REPEATED) * math.log(c / len(REPEATED)) for c in counts.values())  # nats per char
    assert metrics["val_loss"] < 0.5 * unigram, (metrics["val_loss"], unigram)
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]), rel=1e-4)
    assert metrics["val_bits_per_character"] == pytest.approx(metrics["val_loss"] / math.log(2), rel=1e-4)
    assert metrics["val_bits_per_token"] == pytest.approx(metrics["val_bits_per_character"], rel=1e-6)
    assert load_vocab(run_dir / "tokenizer").vocab_size == len(counts)


# ---------------------------------------------------------------- generation


def _tiny_model(tiny_run):
    from xformer.commands.generate import load_text_model

    return load_text_model(tiny_run[0])


def _nanogpt_greedy(model, ids, window, steps):
    """nanoGPT's sample.py, greedy: crop to the last `window` tokens, recompute, append the argmax."""
    for _ in range(steps):
        logits = model({"input_ids": ids[:, -window:]})["logits"][:, -1]
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids


def _random_char_gpt(vocab, block):
    """An untrained GPT with large weights (std 0.3), so that every next token depends on the whole context."""
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=2, n_heads=2, d_ff=64),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": block}),
                                    PartConfig("causal_lm")))
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.3)
    return model.eval()


def test_sliding_window_generation_past_the_block_size(tiny_run):
    vocab = CharVocab.from_text(REPEATED)
    model = _random_char_gpt(vocab, 32)
    assert max_positions(model) == 32
    prompt = PASSAGE[:5]
    ids = torch.tensor([vocab.encode(prompt)])
    text = generate_text(model, vocab, prompt, max_new_tokens=80)
    assert len(text) == 80  # 5 + 80 > 32 positions: the window slid
    plain = generate(model, ids, max_new_tokens=27)  # what fits in the 32 positions, through the KV cache
    assert text[:27] == vocab.decode(plain[0, 5:].tolist())
    with torch.no_grad():
        reference = _nanogpt_greedy(model, ids, 32, 80)
    assert text == vocab.decode(reference[0, 5:].tolist())
    assert len(set(text[27:])) > 3  # a real test: past the window the text still varies
    trained, trained_vocab = _tiny_model(tiny_run)  # and the trained run continues its passage past the window
    assert generate_text(trained, trained_vocab, prompt, max_new_tokens=40) == (PASSAGE * 2)[5:45]
    # a left-padded batch gives each prompt its own continuation
    batch = generate_text(model, vocab, [prompt, PASSAGE[:12]], max_new_tokens=50)
    assert batch == [text[:50], generate_text(model, vocab, PASSAGE[:12], max_new_tokens=50)]
    # sampling slides too, and a seeded generator repeats itself
    samples = [generate_text(model, vocab, prompt, 60, do_sample=True, top_k=5,
                             generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert len(samples[0]) == 60 and samples[0] == samples[1]
    with pytest.raises(ConfigError, match="beam search"):
        generate_text(model, vocab, prompt, max_new_tokens=40, num_beams=2)
    assert len(generate_text(model, vocab, prompt, max_new_tokens=20, num_beams=2)) == 20  # inside the window


def test_wordpiece_continuation_joins_pieces():
    vocab = WordPieceVocab.train(["the statement and the assignment statements"] * 20, vocab_size=40,
                                 min_frequency=1)
    ids = vocab.encode("the statements are statements")
    cut = next(i for i, t in enumerate(vocab.tokens("the statements are statements")) if t.startswith("##"))
    head = vocab.decode(ids[:cut])
    assert head + _continuation(vocab, ids[:cut], ids[cut:]) == vocab.decode(ids)  # "##" glued to its word
    assert _continuation(vocab, ids[:1], ids[1:2]).startswith(" ")  # a new word gets its space


def test_encoder_decoder_reads_the_prompt_as_source():
    vocab = WordPieceVocab.train(["one two three four five six"] * 10, vocab_size=40, min_frequency=1)
    model = build_model(ModelConfig("encoder-decoder", CoreConfig(d_model=32, n_layers=1, n_heads=2),
                                    PartConfig("seq2seq_text", {"vocab_size": vocab.vocab_size, "max_positions": 16}),
                                    PartConfig("causal_lm")))
    src = torch.tensor([vocab.encode("three two one")])
    out = generate(model, torch.tensor([[vocab.bos_id]]), max_new_tokens=6, eos_token_id=vocab.eos_id,
                   model_inputs={"src_ids": src, "src_mask": torch.ones_like(src, dtype=torch.bool)})
    new = out[0, 1:].tolist()
    new = new[:new.index(vocab.eos_id)] if vocab.eos_id in new else new
    assert generate_text(model, vocab, "three two one", max_new_tokens=6) == vocab.decode(new)
    with pytest.raises(ConfigError, match="non-empty"):
        generate_text(model, vocab, "", max_new_tokens=3)


# ---------------------------------------------------------------- the commands


def test_tokenizer_train_command_round_trip(tmp_path, capsys):
    files = [write(tmp_path, "a.txt", "The for statement is used to iterate.\n" * 30),
             write(tmp_path, "b.txt", "The while statement repeats the execution.\n" * 30)]
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", *files, "--vocab-size", "90", "--min-frequency", "1", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    vocab = load_vocab(out)
    assert summary["kind"] == "wordpiece" and summary["vocab_size"] == vocab.vocab_size <= 90
    assert summary["special_ids"]["[EOS]"] == vocab.eos_id == 6 and summary["pieces"] == vocab.tokens(
        summary["sample"])
    assert vocab.decode(vocab.encode("The while statement is used")) == "the while statement is used"
    assert (out / "vocab.txt").read_text().split("\n")[:2] == ["[PAD]", "[UNK]"]
    # a tokenizer folder may be overwritten with --overwrite, by the other kind too
    assert main(["tokenizer", "train", files[0], "--char", "--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    vocab = load_vocab(out)
    assert isinstance(vocab, CharVocab) and vocab.vocab_size == len(set(open(files[0]).read()))
    assert not (out / "tokenizer.json").exists()
    # errors: one line, exit status 2
    assert "does not exist" in error_line(capsys, ["tokenizer", "train", str(tmp_path / "missing.txt"),
                                                   "--vocab-size", "90", "--out", str(tmp_path / "t2")])
    assert "other files" in error_line(capsys, ["tokenizer", "train", files[0], "--char", "--out", str(tmp_path)])
    assert "--default-corpus" in error_line(capsys, ["tokenizer", "train", "--vocab-size", "90", "--out",
                                                     str(tmp_path / "t3")])


def test_generate_command(tiny_run, capsys):
    run_dir = str(tiny_run[0])
    prompt = PASSAGE[:6]
    assert main(["generate", run_dir, "--prompt", prompt, "--max-new-tokens", "45", "--greedy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(prompt) and len(out) == 6 + 45 + 1  # prompt, 45 characters, print's newline
    assert out[:30] == (PASSAGE * 2)[:30]
    assert main(["generate", run_dir, "--prompt", prompt, "--max-new-tokens", "20", "--num-samples", "2",
                 "--top-k", "3", "--seed", "3"]) == 0
    samples = capsys.readouterr().out[:-1].split("\n" + "-" * 40 + "\n")
    assert len(samples) == 2 and all(s.startswith(prompt) and len(s) == 26 for s in samples)


def test_generate_command_errors(tiny_run, tmp_path, capsys):
    assert "not a run folder" in error_line(capsys, ["generate", str(tmp_path), "--prompt", "a"])
    shutil.copy(tiny_run[0] / "config.yaml", tmp_path / "config.yaml")  # a run folder without a tokenizer
    assert "no saved tokenizer" in error_line(capsys, ["generate", str(tmp_path), "--prompt", "a"])
    assert "[BOS]" in error_line(capsys, ["generate", str(tiny_run[0]), "--prompt", ""])
    assert "not in the" in error_line(capsys, ["generate", str(tiny_run[0]), "--prompt", "\u00e9\u00e9"])
    assert "beam search" in error_line(capsys, ["generate", str(tiny_run[0]), "--prompt", "a", "--num-beams", "2",
                                                                 "--max-new-tokens", "200"])
