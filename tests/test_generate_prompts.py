"""`xformer generate RUN --prompts-file FILE`: one prompt per non-empty line (or the "prompt" of each .jsonl
row), decoded in left-padded batches, one output per prompt on standard output or in --out FILE.jsonl; a prompt's
output does not depend on the prompts batched with it."""
import json

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.data.vocab import CharVocab
from xformer.generation import generate_text

TEXT = "the quick brown fox jumps over the lazy dog while a cat naps\n"
PROMPTS = ["the", "a quick brown fox", "over the lazy dog wh", "x", "cat naps while the"]


@pytest.fixture
def loaded(monkeypatch):
    """A tiny char model with 24 positions (so each prompt's default length differs) as the run's model."""
    from xformer.commands import generate as command

    vocab = CharVocab.from_text(TEXT)
    torch.manual_seed(0)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": 24}),
                                    PartConfig("causal_lm"))).eval()
    model.tokenizer.embed.weight.data.mul_(5)  # varied continuations (a random model's repeat one character)
    model.tokenizer.positions.weight.data.mul_(25)
    monkeypatch.setattr(command, "load_text_model", lambda run_dir, checkpoint: (model, vocab))
    return model, vocab


def test_a_batch_equals_each_prompt_alone(loaded):
    """generate_text of several prompts: each as many tokens as fit after it (the default), as alone; the batch
    wrote as many as fitted after its longest prompt for every prompt."""
    model, vocab = loaded
    alone = [generate_text(model, vocab, p) for p in PROMPTS]
    assert len({len(t) for t in alone}) > 2  # the prompts' default lengths differ
    assert generate_text(model, vocab, PROMPTS) == alone
    assert generate_text(model, vocab, PROMPTS, 6) == [generate_text(model, vocab, p, 6) for p in PROMPTS]


def test_prompts_file_to_jsonl_in_prompt_order(loaded, tmp_path, capsys, cli_error):
    model, vocab = loaded
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS[:2]) + "\n\n  \n" + "\n".join(PROMPTS[2:]) + "\n")
    out = tmp_path / "out.jsonl"
    argv = ["generate", "run", "--prompts-file", prompts, "--greedy", "--batch-size", "2", "--out", out]
    assert main([str(a) for a in argv]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"prompt": p, "sample": 0, "text": generate_text(model, vocab, p)} for p in PROMPTS]
    cli_error(argv, "--out", "already exists", "--overwrite")
    out.write_text("old")
    assert main([str(a) for a in argv + ["--overwrite", "--num-samples", "2"]]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["prompt"], r["sample"]) for r in rows] == [(p, s) for p in PROMPTS for s in (0, 1)]
    assert rows[0]["text"] == rows[1]["text"]  # greedy: both samples alike


def test_jsonl_prompts_file_to_standard_output(loaded, tmp_path, capsys):
    model, vocab = loaded
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p, "id": i}) + "\n" for i, p in enumerate(PROMPTS[:3])))
    assert main(["generate", "run", "--prompts-file", str(prompts), "--greedy", "--max-new-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    blocks = printed.split("\n" + "=" * 40 + "\n")
    assert blocks == [p + generate_text(model, vocab, p, 4) for p in PROMPTS[:2]] + \
        [PROMPTS[2] + generate_text(model, vocab, PROMPTS[2], 4) + "\n"]


@pytest.mark.parametrize("content, options, words", [
    ("\n \n", [], ("--prompts-file", "holds no prompt", "one prompt per line")),
    ('{"text": "a"}\n', [], ("no column 'prompt'",)),
    ("a\n", ["--batch-size", "0"], ("--batch-size must be at least 1",)),
])
def test_bad_prompts_files_are_refused_in_one_line(loaded, tmp_path, cli_error, content, options, words):
    name = "prompts.jsonl" if content.startswith("{") else "prompts.txt"
    (tmp_path / name).write_text(content)
    cli_error(["generate", "run", "--prompts-file", tmp_path / name, *options], *words)


def test_a_prompt_and_a_prompts_file_are_refused_together(tmp_path, capsys):
    (tmp_path / "prompts.txt").write_text("a\n")
    with pytest.raises(SystemExit) as exit_:  # argparse's own one line (OneLineParser)
        main(["generate", "run", "--prompts-file", str(tmp_path / "prompts.txt"), "--prompt", "b"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--prompt" in err and "--prompts-file" in err, err
