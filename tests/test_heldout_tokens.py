"""A held-out text scored by a `token_file` run, as nanoGPT users work: `prepare.py HELD.txt --tokenizer
RUN/tokenizer --val-fraction 1 --out HELD` writes an evaluation-only folder (val.bin, no train.bin) read with the
run's own vocabulary, and `xformer evaluate RUN data.args.path=HELD` scores every token of it once at the run's
block size. The reference is the model's own cross-entropy on the held-out ids, computed here, and the
`text_lm` route (`data.args.files=HELD.txt data.args.val_fraction=1`) of the same model."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.token_file import token_file, write_meta, write_text_corpus
from xformer.data.text import text_lm
from xformer.data.vocab import CharVocab, WordPieceVocab, load_vocab

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "\n".join(f"the fox {i % 7} jumps over the dog and the cat sees {i % 5} birds" for i in range(80))
SHORT = "the cat jumps over"  # 18 characters: 17 targets, one window at block_size 17
LONG = "the dog sees 3 birds and the fox jumps\nover the cat 4\n" * 3  # several windows and a remainder
CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}
MODEL = {"architecture": "decoder", "core": CORE, "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}}
BLOCK = 17


def prepare(*argv: str) -> dict:
    spec = importlib.util.spec_from_file_location("prepare_char", ROOT / "data" / "shakespeare_char" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(argv))


def one_line(capsys, argv, *words) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def train_run(tmp_path, capsys, data: dict, name: str) -> Path:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({"model": MODEL, "data": data,
                                      "train": {"steps": 4, "batch_size": 4, "eval_every": 4, "device": "cpu"}}))
    run = tmp_path / name
    assert main(["train", str(recipe), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    return run


def evaluate(capsys, run: Path, *overrides: str) -> dict:
    capsys.readouterr()  # what preparing printed
    assert main(["evaluate", str(run), *overrides]) == 0
    return json.loads(capsys.readouterr().out)


def direct_ce(model, ids: list[int], block: int) -> float:
    """Mean CE of ids[1:] (the first character has nothing before it), each read with the windows text_lm cuts:
    non-overlapping blocks of ``block`` inputs, the last one ending at the text's end."""
    ids = torch.tensor(ids)
    n, total, count = len(ids), 0.0, 0
    starts = list(range(0, n - 1 - block + 1, block))
    if (n - 1) % block:
        starts.append(n - 1 - block)
    scored_to = 0
    with torch.no_grad():
        for start in starts:
            logits = model({"input_ids": ids[None, start:start + block]})["logits"][0]
            losses = F.cross_entropy(logits, ids[start + 1:start + block + 1], reduction="none")
            new = start + block - max(scored_to, start)  # the targets not scored by an earlier window
            total, count = total + losses[-new:].sum().item(), count + new
            scored_to = start + block
    assert count == n - 1
    return total / count


def test_a_held_out_text_prepared_with_the_runs_vocabulary_is_scored_whole(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(TRAIN)
    prepare(str(tmp_path / "train.txt"), "--out", str(tmp_path / "corpus"))
    run = train_run(tmp_path, capsys, {"name": "token_file",
                                       "args": {"path": str(tmp_path / "corpus"), "block_size": BLOCK}}, "run")
    from xformer.train.run import load_run_model

    model = load_run_model(run)[1].eval()
    vocab = load_vocab(run / "tokenizer")
    for name, text in (("short", SHORT), ("long", LONG)):
        (tmp_path / f"{name}.txt").write_text(text)
        meta = prepare(str(tmp_path / f"{name}.txt"), "--tokenizer", str(run / "tokenizer"), "--val-fraction", "1",
                       "--out", str(tmp_path / name))
        assert meta["tokens"] == {"val": len(text)} and not (tmp_path / name / "train.bin").exists()
        metrics = evaluate(capsys, run, f"data.args.path={tmp_path / name}")
        ce = direct_ce(model, vocab.encode(text), BLOCK)
        assert metrics["val_loss"] == pytest.approx(ce, rel=1e-5)
        assert metrics["val_perplexity"] == pytest.approx(math.exp(ce), rel=1e-5)
        # len(text) - 1 targets and characters: the first one is context only
        assert metrics["val_bits_per_character"] == pytest.approx(ce / math.log(2), rel=1e-5)
        assert metrics["val_bits_per_token"] == pytest.approx(ce / math.log(2), rel=1e-5)
        assert not any(k.startswith("test_") for k in metrics)

    # the text_lm route on an equivalent text_lm run (the same windows, ids and seed: the same model) agrees
    twin = train_run(tmp_path, capsys, {"name": "text_lm",
                                        "args": {"files": str(tmp_path / "train.txt"), "block_size": BLOCK}}, "twin")
    theirs = evaluate(capsys, twin, f"data.args.files={tmp_path / 'long.txt'}", "data.args.val_fraction=1")
    ce = direct_ce(load_run_model(twin)[1].eval(), vocab.encode(LONG), BLOCK)
    assert theirs["val_loss"] == pytest.approx(ce, rel=1e-5)
    ours = evaluate(capsys, run, f"data.args.path={tmp_path / 'long'}")
    for key in ("val_loss", "val_perplexity", "val_bits_per_character", "val_bits_per_token"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key


def test_evaluation_folder_mistakes_end_in_one_line(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(TRAIN)
    prepare(str(tmp_path / "train.txt"), "--out", str(tmp_path / "corpus"))
    data = {"name": "token_file", "args": {"path": str(tmp_path / "corpus"), "block_size": BLOCK}}
    run = train_run(tmp_path, capsys, data, "run")
    (tmp_path / "held.txt").write_text(SHORT)
    held = tmp_path / "held"
    prepare(str(tmp_path / "held.txt"), "--tokenizer", str(run / "tokenizer"), "--val-fraction", "1",
            "--out", str(held))

    one_line(capsys, ["train", str(tmp_path / "run.yaml"), f"data.args.path={held}", "--out", str(tmp_path / "x")],
             "evaluation folder", "no train.bin", f"xformer evaluate RUN data.args.path={held}")
    assert not (tmp_path / "x").exists()

    # another vocabulary of the same size: the ids would stand for other characters
    other = CharVocab.from_text(TRAIN.replace("x", "X"))
    assert other.vocab_size == load_vocab(run / "tokenizer").vocab_size
    other.save(tmp_path / "other_tok")
    write_text_corpus(tmp_path / "held2", SHORT, str(tmp_path / "other_tok"), val_fraction=1)
    one_line(capsys, ["evaluate", str(run), f"data.args.path={tmp_path / 'held2'}"],
             "another vocabulary", str(run / "tokenizer"), "--tokenizer")

    # an evaluation folder holding no tokens
    empty = tmp_path / "empty"
    empty.mkdir()
    write_meta(empty, load_vocab(run / "tokenizer"), "uint16", {})
    one_line(capsys, ["evaluate", str(run), f"data.args.path={empty}"], "holds no tokens")
    write_text_corpus(tmp_path / "one", "t", str(run / "tokenizer"), val_fraction=1)  # a character has no [EOS]
    one_line(capsys, ["evaluate", str(run), f"data.args.path={tmp_path / 'one'}"], "nothing to score")

    # preparing an evaluation-only folder needs the run's vocabulary, and some text
    with pytest.raises(ConfigError, match="--tokenizer RUN/tokenizer"):
        prepare(str(tmp_path / "held.txt"), "--val-fraction", "1", "--out", str(tmp_path / "y"))
    with pytest.raises(ConfigError, match="must be in"):
        write_text_corpus(tmp_path / "z", SHORT, str(run / "tokenizer"), val_fraction=1.5)
    data = token_file(str(held), block_size=BLOCK)
    assert data.train is None and len(data.val) == 1


@pytest.mark.parametrize("kind", ["char", "wordpiece"])
def test_an_evaluation_folder_holds_text_lms_windows_of_the_whole_text(tmp_path, kind):
    """The windows text_lm cuts from a text scored whole with the same vocabulary: without [EOS] the first character
    is context only; WordPiece's [EOS] is read before the first piece, so every piece is scored."""
    vocab = CharVocab.from_text(TRAIN) if kind == "char" else \
        WordPieceVocab.train(TRAIN.splitlines(), vocab_size=60, min_frequency=1)
    vocab.save(tmp_path / "tok")
    (tmp_path / "held.txt").write_text(LONG)
    write_text_corpus(tmp_path / "held", LONG, str(tmp_path / "tok"), val_fraction=1)
    for block in (BLOCK, 200):  # several windows; one window shorter than the block
        ours = token_file(str(tmp_path / "held"), block_size=block)
        theirs = text_lm(files=str(tmp_path / "held.txt"), tokenizer=str(tmp_path / "tok"), block_size=block,
                         val_fraction=1)
        assert ours.train is None and ours.test is None and len(ours.val) == len(theirs.val)
        for k in range(len(ours.val)):
            for key in ("input_ids", "labels"):
                assert torch.equal(ours.val[k][key], theirs.val[k][key]), (block, k, key)
        assert ours.loss_metrics("val", 1.3) == pytest.approx(theirs.loss_metrics("val", 1.3))
