"""`xformer predict` on a masked-LM run (head masked_lm, data text_mlm): Hugging Face's fill-mask pipeline. A tiny
BERT trained in seconds on a text where one word is predictable fills it in; exported with `xformer export --format
hf`, transformers' own pipeline("fill-mask") on the exported folder gives the same tokens, ids, probabilities and
sequences."""
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.predict import predict_run

ANIMALS = ["cat", "dog", "bird", "fish", "horse", "goat"]


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every line: an animal (unpredictable), then 'sat on the mat' (predictable: 'mat' always ends it)."""
    tmp = tmp_path_factory.mktemp("predict_fill")
    rng = np.random.default_rng(0)
    lines = [f"the {rng.choice(ANIMALS)} sat on the mat ." for _ in range(400)]
    (tmp / "corpus.txt").write_text("\n".join(lines) + "\n")
    recipe = yaml.safe_load((Path(__file__).parents[1] / "tasks" / "bert_mlm.yaml").read_text())
    recipe["model"]["core"].update(d_model=32, n_layers=1, n_heads=2, d_ff=64)
    recipe["data"]["args"].update(files=str(tmp / "corpus.txt"), vocab_size=60, min_frequency=1, max_length=16,
                                  line_by_line=True)
    recipe["train"].update(steps=200, warmup_steps=10, eval_every=200, log_every=200, lr=3e-3)
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    assert main(["train", str(tmp / "r.yaml"), "--out", str(tmp / "run"), "--quiet", "--threads", "1"]) == 0
    return tmp


def test_the_predictable_word_is_filled_in_from_strings_files_frames_and_stdin(run, capsys):
    rows, table = predict_run(run / "run", ["the dog sat on the [MASK] ."], top_k=3)
    assert [(r["file"], r["mask"], r["rank"]) for r in rows] == [("text 0", 1, 1), ("text 0", 1, 2), ("text 0", 1, 3)]
    assert rows[0]["token"] == "mat" and rows[0]["probability"] > 0.5, rows[0]
    assert rows[0]["sequence"] == "the dog sat on the mat."
    assert rows[0]["probability"] >= rows[1]["probability"] >= rows[2]["probability"]
    parsed = list(csv.DictReader(io.StringIO(table)))
    assert list(parsed[0]) == ["file", "text", "mask", "rank", "token", "token_id", "probability", "sequence"]
    assert parsed[0]["token"] == "mat" and parsed[0]["text"] == "the dog sat on the [MASK] ."
    # two masks in one text: a row block per mask, numbered from 1; the other mask stays in the sequence
    rows, _ = predict_run(run / "run", "the [MASK] sat on the [MASK] .", top_k=2)
    assert [(r["mask"], r["rank"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert rows[0]["token"] in ANIMALS and rows[2]["token"] == "mat"
    assert rows[2]["sequence"] == "the [MASK] sat on the mat."
    # the inputs a text classifier's run takes: text files (a line each), tables (a text column), frames, stdin
    (run / "new.txt").write_text("the cat sat on the [MASK] .\n\nthe [MASK] sat on the mat .\n")
    pd.DataFrame({"id": [7], "text": ["a goat sat on the [MASK] ."]}).to_csv(run / "new.csv", index=False)
    rows, _ = predict_run(run / "run", [run / "new.txt", str(run / "new.csv"), pd.Series(["the [MASK] ."])], top_k=1)
    assert [r["file"] for r in rows] == [f"{run / 'new.txt'}:1", f"{run / 'new.txt'}:3", f"{run / 'new.csv'}:1",
                                         "row 0"]
    assert [rows[0]["token"], rows[2]["token"]] == ["mat", "mat"] and rows[1]["token"] in ANIMALS
    (run / "empty.txt").write_text("\n")  # an empty file beside other inputs is no text, as for a classifier
    rows, _ = predict_run(run / "run", [run / "empty.txt", "the [MASK] sat"], top_k=1)
    assert [r["file"] for r in rows] == ["text 1"]
    out = run / "preds.csv"
    assert main(["predict", str(run / "run"), "the fish sat on the [MASK] .", str(run / "new.txt"), "--top-k", "2",
                 "--out", str(out)]) == 0
    written = list(csv.DictReader(out.open()))
    assert len(written) == 6 and written[0]["file"] == "text 0" and written[0]["token"] == "mat"
    piped = subprocess.run([sys.executable, "-m", "xformer", "predict", str(run / "run"), "-", "--top-k", "1"],
                           input="the horse sat on the [MASK] .\n", capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[1].startswith("-:1,the horse sat on the [MASK] .,1,1,mat,")


def test_fill_mask_matches_transformers_pipeline_on_the_exported_folder(run, monkeypatch):
    """Every token of the vocabulary (top_k = its size: special tokens and ## continuations too) with the pipeline's
    score, token id, token_str and sequence; texts of several lengths in one padded batch."""
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the folder is local: nothing may be downloaded
    assert main(["export", str(run / "run"), "--format", "hf", "--out", str(run / "hf")]) == 0
    fill = transformers.pipeline("fill-mask", model=str(run / "hf"), tokenizer=str(run / "hf"))
    texts = ["the dog sat on the [MASK] .", "[MASK] cat", "the [MASK] sat on the [MASK] . the mat", "walk[MASK]"]
    vocab_size = fill.tokenizer.vocab_size
    rows, _ = predict_run(run / "run", texts, top_k=vocab_size + 5, batch_size=3)  # more than the vocabulary: all
    for i, text in enumerate(texts):
        theirs = fill(text, top_k=vocab_size)
        theirs = theirs if isinstance(theirs[0], list) else [theirs]
        for j, per_mask in enumerate(theirs, 1):
            ours = [r for r in rows if r["file"] == f"text {i}" and r["mask"] == j]
            assert [r["token_id"] for r in ours] == [t["token"] for t in per_mask]
            assert [r["token"] for r in ours] == [t["token_str"] for t in per_mask]
            np.testing.assert_allclose([r["probability"] for r in ours], [t["score"] for t in per_mask], atol=1e-5)
            # several masks: the pipeline's sequence also keeps [CLS] and [SEP] (decoded with the special tokens,
            # to show the other masks); ours keeps the other masks only
            strip = (lambda s: s.removeprefix("[CLS] ").removesuffix(" [SEP]")) if len(theirs) > 1 else str
            assert [r["sequence"] for r in ours] == [strip(t["sequence"]) for t in per_mask]
    assert any(r["token"].startswith("##") for r in rows)  # continuations are compared too
    # the exported folder itself, as predict reads a BertForSequenceClassification folder: the run's rows
    from_folder, _ = predict_run(run / "hf", texts, top_k=vocab_size)
    assert [(r["token_id"], r["sequence"]) for r in from_folder] == [(r["token_id"], r["sequence"]) for r in rows]
    np.testing.assert_allclose([r["probability"] for r in from_folder], [r["probability"] for r in rows], atol=1e-6)


def test_texts_without_a_mask_too_long_or_for_an_ensemble_are_refused_in_one_line(run, capsys):
    err = one_line_error(capsys, ["predict", str(run / "run"), "the cat sat on the mat"])
    assert f"'the cat sat on the mat' is neither a file nor a text with a [MASK] ({run / 'run'} is a masked LM" in err
    assert "write [MASK] where the word to predict goes" in err
    (run / "no_mask.txt").write_text("the [MASK] sat\nthe cat sat\n")
    err = one_line_error(capsys, ["predict", str(run / "run"), str(run / "no_mask.txt")])
    assert f"{run / 'no_mask.txt'}:2 ('the cat sat') has no [MASK]" in err
    long = "the cat sat on the mat . " * 3  # 21 pieces: [CLS] + 14 + [SEP] fit the 16 positions
    rows, _ = predict_run(run / "run", "the [MASK] " + long, top_k=1)  # cut after its mask, as predict cuts texts
    assert rows[0]["text"] == "the [MASK] " + long
    err = one_line_error(capsys, ["predict", str(run / "run"), long + "[MASK]"])
    assert ("text 0: its mask 1 is piece 22 of the text, past the 14 pieces the model's 16 positions hold "
            "([CLS] text [SEP])") in err
    if not (run / "seed_2").exists():
        shutil.copytree(run / "run", run / "seed_2")
    err = one_line_error(capsys, ["predict", str(run / "run"), "the [MASK]", "--ensemble", str(run / "seed_2")])
    assert "--ensemble averages classifiers' probabilities; fill-mask predicts with one masked-LM run" in err


def test_a_mask_token_is_just_text_to_a_classifier(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.choice(["neg", "pos"], 40)
    pd.DataFrame({"text": [f"a {'good' if y == 'pos' else 'bad'} film" for y in labels], "label": labels}).to_csv(
        tmp_path / "train.csv", index=False)
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                        "tokenizer": {"name": "bert_text"},
                        "head": {"name": "classification", "args": {"pool": "cls"}}},
              "data": {"name": "text_classification",
                       "args": {"files": str(tmp_path / "train.csv"), "vocab_size": 40, "min_frequency": 1,
                                "max_length": 8}},
              "train": {"steps": 2, "batch_size": 8, "eval_every": 2}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    (tmp_path / "masked.txt").write_text("a [MASK] film\n")
    rows, _ = predict_run(tmp_path / "run", tmp_path / "masked.txt", top_k=1)
    assert [(r["text"], r["class"] in ("neg", "pos")) for r in rows] == [("a [MASK] film", True)]
