"""A nanoGPT / Hugging Face user's small language model on their own files: what went wrong for them.

Each test is a case such a user meets: a held-out text shorter than the model's window scored by
``xformer evaluate``; documents in files without a final newline;
a sampling temperature so small that the logits overflow, ..."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.data.corpus import read_text_files
from xformer.data.text import encode_stream, text_lm
from xformer.data.vocab import CharVocab, WordPieceVocab
from xformer.generation import generate_text

TRAIN = "\n".join(f"the fox {i % 7} jumps over the dog and the cat sees {i % 5} birds" for i in range(60))
TINY = {"model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2}}


def train_tiny(tmp_path, args: dict, name: str = "run"):
    recipe = {**TINY, "data": {"name": "text_lm", "args": args}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / name), "--quiet",
                 "--threads", "1"]) == 0
    return tmp_path / name


def test_a_held_out_text_shorter_than_the_window_is_scored(tmp_path, capsys):
    """`xformer evaluate RUN data.args.files=held_out.txt data.args.val_fraction=1` on a sentence shorter than the
    run's block_size was refused ("an evaluation split needs at least block_size + 1 tokens"), though a causal model
    scores a shorter text in one shorter window. Its loss is the model's own cross-entropy on it."""
    (tmp_path / "train.txt").write_text(TRAIN, encoding="utf-8")
    run = train_tiny(tmp_path, {"files": str(tmp_path / "train.txt"), "block_size": 32})
    capsys.readouterr()
    short = "the cat sees 3 birds"  # 20 characters: 19 scored, fewer than block_size + 1 = 33
    (tmp_path / "short.txt").write_text(short, encoding="utf-8")
    assert main(["evaluate", str(run), f"data.args.files={tmp_path / 'short.txt'}", "data.args.val_fraction=1"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    from xformer.train.run import load_run_model

    model = load_run_model(run)[1].eval()
    ids = torch.tensor([CharVocab.from_text(TRAIN).encode(short)])
    with torch.no_grad():
        ce = F.cross_entropy(model({"input_ids": ids[:, :-1]})["logits"][0], ids[0, 1:]).item()
    assert metrics["val_loss"] == pytest.approx(ce, rel=1e-5)
    # split in two short parts, each token still scored once
    data = text_lm(files=str(tmp_path / "short.txt"), tokenizer=str(run / "tokenizer"), block_size=32,
                   val_fraction=0.5, test_fraction=0.5)
    scored = [int((part[k]["labels"] != -100).sum()) for part in (data.val, data.test) for k in range(len(part))]
    assert sum(scored) == len(short) - 1


def test_a_file_ends_its_last_paragraph_without_a_final_newline(tmp_path):
    """One document per file, written without a final newline (Python's ``write(text)``): the last paragraph of
    one file and the first of the next were joined by one line break, so WordPiece read them as one paragraph,
    with no [EOS] between the documents; a file ending with a newline was already followed by a blank line."""
    ends = {"a.txt": "First story ends here.", "b.txt": "Second story starts here.\n", "c.txt": "Third one."}
    for name, text in ends.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    text = read_text_files([tmp_path / name for name in ends])
    assert text == "First story ends here.\n\nSecond story starts here.\n\nThird one."
    vocab = WordPieceVocab.train(text.splitlines(), vocab_size=60, min_frequency=1)
    assert encode_stream(vocab, text).count(vocab.eos_id) == 3  # one per document


def test_a_tiny_temperature_samples_the_most_probable_token():
    """Any finite temperature > 0 is accepted; one below ~1e-37 made logits / T overflow to inf, softmax NaN, and
    torch.multinomial raised (a traceback from `xformer generate --temperature 1e-40`). The limit T -> 0 of
    sampling is greedy decoding."""
    vocab = CharVocab.from_text(TRAIN)
    torch.manual_seed(0)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": 16}),
                                    PartConfig("causal_lm"))).eval()
    greedy = generate_text(model, vocab, "the fox", 12)
    for temperature in (1e-40, 5e-324):
        assert generate_text(model, vocab, "the fox", 12, do_sample=True, temperature=temperature,
                             generator=torch.Generator().manual_seed(0)) == greedy


def test_temperature_zero_names_greedy(tmp_path, capsys):
    """nanoGPT and Hugging Face users write temperature 0 for "no randomness": the line now says --greedy does
    that, where it listed every sampling range."""
    assert main(["generate", str(tmp_path), "--prompt", "a", "--temperature", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--temperature 0" in err and "--greedy" in err, err


@pytest.mark.parametrize("options, line", [
    (["--num-samples", "0"], "--num-samples must be at least 1, got 0"),
    (["--max-new-tokens", "-3"], "--max-new-tokens must be at least 0, got -3")])
def test_generate_names_the_count_that_is_wrong(tmp_path, capsys, options, line):
    """One line said "--num-samples must be >= 1 and --max-new-tokens >= 0" for either: it names the one given."""
    assert main(["generate", str(tmp_path), "--prompt", "a", *options]) == 2
    assert capsys.readouterr().err == f"xformer: error: {line}\n"


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_a_tokenizer_folder_that_does_not_exist_is_named_so(tmp_path, capsys, command):
    """`xformer tokenizer encode missing/ TEXT` said the folder "holds no saved tokenizer"; it holds nothing."""
    assert main(["tokenizer", command, str(tmp_path / "missing"), "1" if command == "decode" else "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'missing'} does not exist" in err, err


class _Says(torch.nn.Module):
    """A decoder that always predicts one token: its continuation is known whatever the prompt."""

    architecture = "decoder"

    def __init__(self, vocab_size: int, token: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(vocab_size))
        self.token = token

    def forward(self, batch):
        logits = self.weight.expand(*batch["input_ids"].shape, -1).clone()
        logits[..., self.token] = 10.0
        return {"logits": logits}


def test_a_wordpiece_continuation_of_a_prompt_ending_in_whitespace_has_no_doubled_space():
    """`--prompt-file` keeps the file's final newline, as nanoGPT's does; WordPiece writes no whitespace back, so its
    continuation of a word starts with a space: "ROMEO:\\n" + " thou" printed a line starting with a space, and
    "the dog " + " the" two spaces. A prompt that ends in whitespace now takes the words as they are."""
    vocab = WordPieceVocab.train(TRAIN.splitlines(), vocab_size=60, min_frequency=1)
    model = _Says(vocab.vocab_size, vocab.encode("the")[0])
    assert generate_text(model, vocab, "the dog", 2) == " the the"
    for prompt in ("the dog ", "the dog\n", "the dog\n\n"):
        assert prompt + generate_text(model, vocab, prompt, 2) == prompt + "the the"
