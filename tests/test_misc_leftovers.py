"""Leftovers of the audit: the Trainer's moving average follows the record of what is untrained; compare's
words for a CSV series with gaps; average refuses another run's data before measuring it. Tiny, nothing
downloaded."""
from __future__ import annotations

import pytest
import torch
import yaml

from xformer.cli import main

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "quick", "brown", "fox", "cat", "sleeps", "."]


def test_the_moving_average_is_trained_where_the_model_is(tmp_path, monkeypatch):
    """init_from of a BertModel folder (no masked-LM head) trains the head; the EMA copy, made when the Trainer was
    built, kept the head named in ``untrained`` forever, so a check on the averaged model refused trained weights."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import BertWordPieceTokenizer

    from xformer.models import check_trained
    from xformer.train import run as run_module

    torch.manual_seed(0)
    (tmp_path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(
        tokenizer_object=BertWordPieceTokenizer(str(tmp_path / "vocab.txt"))._tokenizer)
    transformers.BertModel(transformers.BertConfig(
        vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32)).save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    (tmp_path / "lines.txt").write_text("".join(f"the quick brown fox {w} sleeps .\n" for w in WORDS[5:] * 4))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "init_from": f"hf:{tmp_path / 'bert'}", "model": {"architecture": "encoder", "head": {"name": "masked_lm"}},
        "data": {"name": "text_mlm", "args": {"files": [str(tmp_path / "lines.txt")], "max_length": 16,
                                              "line_by_line": True, "val_fraction": 0.2, "test_fraction": 0.2}},
        "train": {"steps": 2, "batch_size": 2, "eval_every": 2, "log_every": 1, "ema": {"enabled": True}}}))
    built = []

    class Recorded(run_module.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(run_module, "Trainer", Recorded)
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    (trainer,) = built
    assert trainer.model.untrained == frozenset()
    assert trainer.ema.module.untrained == frozenset()
    check_trained(trainer.ema.module, "a score")


def test_compare_says_a_csv_series_with_gaps_in_its_own_terms(tmp_path, capsys):
    """It read "pass missing='ffill' ...; xformer compare takes no data.args": train's option named first, as a fix
    compare could take. Now compare's fix comes first (the file), then train's, as for a UCR file."""
    gap = tmp_path / "gap.csv"
    gap.write_text("date,x\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{'' if i == 50 else i % 7}\n"
                                        for i in range(400)))
    capsys.readouterr()
    assert main(["compare", "--domains", "series", "--series-data", str(gap), "--steps", "2", "--d-model", "8",
                 "--layers", "1", "--heads", "2", "--batch-size", "4", "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "missing values in column 'x' (1 of 400 rows)" in err, err
    assert "fill them in the file, or train on it with xformer train ... data.args.missing=" in err, err
    assert "pass missing=" not in err and "takes no data.args" not in err, err
    assert not (tmp_path / "o").exists()


def test_average_on_other_data_says_it_is_not_the_run_s_before_the_data_s_own_complaint(tmp_path, cli_error):
    """`xformer average RUN --out AVG data.args.files=OTHER` on a text too small said the data's own line first
    ("the training part has 1 tokens ...; give more text"): a fix that makes other data fit, where the run's own
    data built when it trained. Now it is refused as not the run's data, naming the run (not AVG), for one run
    and a soup alike, and another text of the same size too; nothing is written."""
    (tmp_path / "t.txt").write_text("abcde" * 200, encoding="utf-8")
    (tmp_path / "r.yaml").write_text(
        "model: {architecture: decoder, core: {d_model: 8, n_layers: 1, n_heads: 2, d_ff: 16},\n"
        "  tokenizer: {name: text}, head: {name: causal_lm}}\n"
        f"data: {{name: text_lm, args: {{files: {tmp_path / 't.txt'}, tokenizer: char, block_size: 8}}}}\n"
        "train: {steps: 4, batch_size: 4, eval_every: 2}\n", encoding="utf-8")
    runs = [tmp_path / "run", tmp_path / "ft1", tmp_path / "ft2"]
    for run, more in zip(runs, ([], [f"init_from={runs[0]}", "train.seed=1"], [f"init_from={runs[0]}"])):
        assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1", *more]) == 0
    (tmp_path / "small.txt").write_text("ab", encoding="utf-8")
    (tmp_path / "other.txt").write_text("edcba" * 200, encoding="utf-8")
    avg = tmp_path / "avg"
    for chosen in (["run", "--last", "2"], ["ft1", "ft2"]):
        for other in ("small.txt", "other.txt"):
            err = cli_error(["average", *(c if c.startswith("-") or c.isdigit() else tmp_path / c for c in chosen),
                             "--out", avg,
                             f"data.args.files={tmp_path / other}"])
            first = tmp_path / chosen[0]
            assert err.startswith(f"xformer: error: cannot average {first}: the data at {tmp_path / other} "
                                  "(data.args.files) is not the run's: "), err
            assert f"move it back to {tmp_path / 't.txt'}" in err and str(avg) not in err, err
            assert "give more text" not in err and "score it on other data" not in err, err
            assert not avg.exists()
    assert main(["average", str(runs[0]), "--last", "2", "--out", str(avg), f"data.args.files={tmp_path / 't.txt'}",
                 "--threads", "1"]) == 0
