"""A text run given a saved vocabulary by a relative path (data.args.tokenizer=tok) records it absolute, as its
text files, so that `xformer train --resume` from another directory reads the same vocabulary."""
import json

import yaml

from xformer.cli import main

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40


def test_a_relative_tokenizer_folder_is_recorded_absolute_and_resumes_from_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    (tmp_path / "work" / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["tokenizer", "train", "corpus.txt", "--char", "--out", "tok"]) == 0
    recipe = {"model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                        "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"files": "corpus.txt", "tokenizer": "tok", "block_size": 16}},
              "train": {"steps": 2, "batch_size": 4, "eval_every": 2}}
    (tmp_path / "work" / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "recipe.yaml", "--out", "run", "--quiet", "--threads", "1"]) == 0
    recorded = yaml.safe_load((tmp_path / "work" / "run" / "config.yaml").read_text())["data"]["args"]
    assert recorded["tokenizer"] == str(tmp_path / "work" / "tok")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", "--resume", str(tmp_path / "work" / "run"), "--quiet", "--threads", "1",
                 "train.steps=4"]) == 0
    assert json.loads((tmp_path / "work" / "run" / "metrics.json").read_text())["steps"] == 4
    for named in ("char", "wordpiece"):  # not folders: kept as they are
        recipe["data"]["args"]["tokenizer"] = named
        monkeypatch.chdir(tmp_path / "work")
        (tmp_path / "work" / f"{named}.yaml").write_text(yaml.safe_dump(recipe))
        assert main(["train", f"{named}.yaml", "--out", f"run_{named}", "--quiet", "--threads", "1",
                     *(["data.args.vocab_size=60", "data.args.min_frequency=1"] if named == "wordpiece" else [])]) == 0
        assert yaml.safe_load((tmp_path / "work" / f"run_{named}" / "config.yaml").read_text())["data"]["args"][
            "tokenizer"] == named
