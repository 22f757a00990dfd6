"""`text_lm` with val_fraction + test_fraction = 1: no training part, the whole text scored, so that
`xformer evaluate RUN data.args.files=OTHER data.args.val_fraction=1` gives the perplexity of every token of
another text (before, only its last val_fraction could be scored). The reference is the model's own
cross-entropy on the text's ids computed here. The run's recipe leaves tokenizer at its default ("char"):
evaluate reads the run's saved characters, not those of the other text (which gave a model of another size)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

from xformer.cli import main
from xformer.data.text import text_lm
from xformer.data.vocab import CharVocab, WordPieceVocab

TRAIN = "\n".join(f"the fox {i % 7} jumps over the dog and the cat sees {i % 5} birds" for i in range(80))
OTHER = "the cat jumps over"  # 18 characters: 17 targets, one window of 17 and no remainder at block_size 17


def one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_evaluate_scores_every_token_of_another_text(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "other.txt").write_text(OTHER)
    recipe = {"model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                        "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"files": str(tmp_path / "train.txt"), "block_size": 17}},
              "train": {"steps": 4, "batch_size": 4, "eval_every": 4}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), f"data.args.files={tmp_path / 'other.txt'}", "data.args.val_fraction=1"]) == 0
    metrics = json.loads(capsys.readouterr().out)

    from xformer.train.run import load_run_model

    model = load_run_model(run)[1].eval()
    vocab = CharVocab.from_text(TRAIN)
    ids = torch.tensor([vocab.encode(OTHER)])
    with torch.no_grad():  # the first character has nothing before it: the other 17 are scored
        ce = F.cross_entropy(model({"input_ids": ids[:, :-1]})["logits"][0], ids[0, 1:]).item()
    assert metrics["val_loss"] == pytest.approx(ce, rel=1e-5)
    assert metrics["val_bits_per_character"] == pytest.approx(ce / math.log(2), rel=1e-5)  # 17 targets, 17 chars
    assert not any(k.startswith("test_") for k in metrics)
    # other files without a fraction: every token scored as the test split (the run's 0.1 scored a tenth)
    assert main(["evaluate", str(run), f"data.args.files={tmp_path / 'other.txt'}"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole == {key.replace("val_", "test_"): value for key, value in metrics.items()}

    one_line(capsys, ["evaluate", str(run), f"data.args.files={tmp_path / 'train.txt'}", "data.args.val_fraction=1"],
             "examples it trained on")
    one_line(capsys, ["train", str(tmp_path / "r.yaml"), "data.args.val_fraction=1", "--out", str(tmp_path / "x")],
             "has no training split", "a text all val/test")
    one_line(capsys, ["train", str(tmp_path / "r.yaml"), "data.args.val_fraction=0.6", "data.args.test_fraction=0.6",
                      "--out", str(tmp_path / "x")], "sum to at most 1")
    assert not (tmp_path / "x").exists()


def test_a_vocabulary_with_eos_scores_the_first_token_after_it(tmp_path):
    """WordPiece streams put [EOS] after each paragraph: before the first one of a whole text it is the
    context of its first token, so every token of the text is scored."""
    (tmp_path / "t.txt").write_text(TRAIN)
    vocab = WordPieceVocab.train(TRAIN.splitlines(), vocab_size=60, min_frequency=1)
    vocab.save(tmp_path / "tok")
    data = text_lm(files=str(tmp_path / "t.txt"), tokenizer=str(tmp_path / "tok"), block_size=8, val_fraction=0.5,
                   test_fraction=0.5)
    assert data.train is None and data.val.ids[0].item() == vocab.eos_id
    scored = sum(int((w["labels"] != -100).sum()) for w in (data.val[k] for k in range(len(data.val))))
    val_text = TRAIN[:TRAIN.find("\n", len(TRAIN) // 2) + 1]
    assert scored == len(vocab.encode(" ".join(val_text.split("\n")).strip())) + 1  # its pieces and [EOS]
    with pytest.raises(Exception, match="learns its pieces from the training part"):
        text_lm(files=str(tmp_path / "t.txt"), tokenizer="wordpiece", val_fraction=1)
