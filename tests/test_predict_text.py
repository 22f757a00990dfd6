"""`xformer predict` on a text classifier's run: texts from CSV / TSV (the run's text column), text files and
standard input, classified as the run's evaluation texts were ([CLS] text [SEP], its vocabulary and labels)."""
import bz2
import csv
import gzip
import io
import lzma
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.predict import predict_run

POSITIVE, NEGATIVE, FILLER = ["good", "great", "fine"], ["bad", "awful", "poor"], ["movie", "film", "plot", "actor"]


def review(rng, label: str) -> str:
    words = list(rng.choice(POSITIVE if label == "pos" else NEGATIVE, 2)) + list(rng.choice(FILLER, 3))
    return " ".join(rng.permutation(words))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict_text")
    rng = np.random.default_rng(0)
    labels = rng.choice(["neg", "pos"], 400)
    pd.DataFrame({"review": [review(rng, y) for y in labels], "sentiment": labels}).to_csv(tmp / "train.csv",
                                                                                         index=False)
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
                        "tokenizer": {"name": "bert_text"}, "head": {"name": "classification", "args": {"pool": "cls"}}},
              "data": {"name": "text_classification",
                       "args": {"files": str(tmp / "train.csv"), "text_column": "review", "label_column": "sentiment",
                                "vocab_size": 100, "min_frequency": 1, "max_length": 16}},
              "train": {"steps": 150, "batch_size": 32, "lr": 3e-3, "eval_every": 150}}
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    assert main(["train", str(tmp / "r.yaml"), "--out", str(tmp / "run"), "--quiet", "--threads", "1"]) == 0
    return tmp


def test_new_reviews_are_classified_from_csv_text_files_and_stdin(run):
    rng = np.random.default_rng(1)
    truth = rng.choice(["neg", "pos"], 60)
    pd.DataFrame({"id": range(60), "review": [review(rng, y) for y in truth]}).to_csv(run / "new.csv", index=False)
    rows, table = predict_run(run / "run", [run / "new.csv"], top_k=2)
    assert [r["file"] for r in rows] == [f"{run / 'new.csv'}:{i}" for i in range(1, 61)]
    accuracy = np.mean([r["class"] == y for r, y in zip(rows, truth)])
    assert accuracy >= 0.9, accuracy  # the words decide the label: a trained classifier gets it
    parsed = list(csv.DictReader(io.StringIO(table)))
    assert list(parsed[0]) == ["file", "text", "class", "probability", "class_1", "probability_1", "class_2",
                               "probability_2"]
    assert all(abs(float(p["probability_1"]) + float(p["probability_2"]) - 1) < 1e-5 for p in parsed)
    (run / "new.txt").write_text("great good film\n\nawful poor plot\n")
    rows, _ = predict_run(run / "run", [run / "new.txt"], top_k=1)
    assert [(r["file"], r["class"]) for r in rows] == [(f"{run / 'new.txt'}:1", "pos"), (f"{run / 'new.txt'}:3", "neg")]
    piped = subprocess.run([sys.executable, "-m", "xformer", "predict", str(run / "run"), "-", "--top-k", "1"],
                           input="fine great actor\n", capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[1].startswith("-:1,fine great actor,pos,")


@pytest.mark.parametrize("make, message", [
    (lambda run: run / "absent.txt", "text file {run}/absent.txt does not exist; give .csv / .tsv / .jsonl files with a 'review' column"),
    (lambda run: (run / "other.csv").write_text("text,x\nfine,1\n") and run / "other.csv",
     "{run}/other.csv has no column 'review' (its header: text, x); the run reads its texts from that column"),
    (lambda run: (run / "latin1.csv").write_bytes("review\ncaf\xe9 film\n".encode("latin-1")) and run / "latin1.csv",
     "{run}/latin1.csv is not UTF-8 text (invalid continuation byte at byte 10)"),
])
def test_unreadable_inputs_are_one_line(run, capsys, make, message):
    path = make(run)
    assert main(["predict", str(run / "run"), str(path)]) == 2
    err = capsys.readouterr().err
    assert message.format(run=run) in err and err.count("\n") == 1


def test_two_text_runs_of_one_vocabulary_predict_as_an_ensemble(run, capsys):
    """Runs that each trained their own WordPiece vocabulary may order its tokens differently, so an ensemble
    asks for one vocabulary (data.args.tokenizer=the first run's); given it, the probabilities are averaged."""
    rng = np.random.default_rng(2)
    truth = rng.choice(["neg", "pos"], 40)
    pd.DataFrame({"review": [review(rng, y) for y in truth]}).to_csv(run / "more.csv", index=False)
    assert main(["train", str(run / "r.yaml"), "train.seed=1", "--out", str(run / "run_own"), "--quiet",
                 "--threads", "1"]) == 0
    if not (run / "run_own" / "tokenizer" / "vocab.txt").read_bytes() == (run / "run" / "tokenizer" / "vocab.txt").read_bytes():
        assert main(["predict", str(run / "run"), str(run / "more.csv"), "--ensemble", str(run / "run_own")]) == 2
        assert f"train the runs of an ensemble on one vocabulary: xformer train RECIPE data.args.tokenizer=" \
               f"{run / 'run' / 'tokenizer'}" in capsys.readouterr().err
    assert main(["train", str(run / "r.yaml"), "train.seed=1", f"data.args.tokenizer={run / 'run' / 'tokenizer'}",
                 "--out", str(run / "run_s1"), "--quiet", "--threads", "1"]) == 0
    rows, _ = predict_run([run / "run", run / "run_s1"], [run / "more.csv"], top_k=2)
    single = [predict_run(r, [run / "more.csv"], top_k=2)[0] for r in (run / "run", run / "run_s1")]
    for row, a, b in zip(rows, *single):
        assert row["probability"] == pytest.approx((dict(a["top_k"])[row["class"]] + dict(b["top_k"])[row["class"]]) / 2,
                                                   abs=1e-5)
    assert np.mean([r["class"] == y for r, y in zip(rows, truth)]) >= 0.9


def test_predictions_to_a_gz_name_are_gzip_compressed_as_pandas_writes_them(run, capsys):
    (run / "few.txt").write_text("great good film\nawful poor plot\n", encoding="utf-8")
    assert main(["predict", str(run / "run"), str(run / "few.txt"), "--top-k", "1"]) == 0
    plain = capsys.readouterr().out
    out = run / "preds.csv.gz"
    assert main(["predict", str(run / "run"), str(run / "few.txt"), "--top-k", "1", "--out", str(out)]) == 0
    assert gzip.decompress(out.read_bytes()).decode("utf-8") == plain  # was the plain text under a .gz name
    assert pd.read_csv(out).to_csv(index=False) == plain


def test_compressed_text_files_are_read_as_the_files_they_hold(run, capsys):
    """reviews.csv.gz is a CSV and notes.txt.xz a text file to predict (and corpus.txt.bz2 a corpus to train on),
    as their names say; before, each was refused as 'not UTF-8 text'."""
    from xformer.data.corpus import read_text_files

    table = "id,review\n1,great good film\n2,awful poor plot\n"
    (run / "few.csv").write_text(table, encoding="utf-8")
    (run / "few.csv.gz").write_bytes(gzip.compress(table.encode()))
    (run / "notes.txt").write_text("great good film\r\nawful poor plot\r\n", encoding="utf-8")
    (run / "notes.txt.xz").write_bytes(lzma.compress((run / "notes.txt").read_bytes()))
    for plain, packed in [("few.csv", "few.csv.gz"), ("notes.txt", "notes.txt.xz")]:
        assert main(["predict", str(run / "run"), str(run / plain), "--top-k", "1"]) == 0
        expected = capsys.readouterr().out.replace(plain, packed)
        assert main(["predict", str(run / "run"), str(run / packed), "--top-k", "1"]) == 0
        assert capsys.readouterr().out == expected
    (run / "corpus.txt.bz2").write_bytes(bz2.compress((run / "notes.txt").read_bytes()))
    assert read_text_files([run / "corpus.txt.bz2"]) == read_text_files([run / "notes.txt"]) == (
        "great good film\nawful poor plot\n")
