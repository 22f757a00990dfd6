"""A Hugging Face BERT folder without a masked-LM head (``BertModel``; ``BertForQuestionAnswering``,
``BertForNextSentencePrediction``, ``BertForTokenClassification`` and ``BertForMultipleChoice``, read as their
encoder) gives a model whose head is freshly initialised. The model records which parameters were not read
(``model.untrained``); ``load_pretrained`` warns as transformers does ("Some weights ... were not initialized from
the model checkpoint ... You should probably TRAIN this model"); what would use the head's output as if trained
(export, evaluate, predict, a teacher) refuses in one line naming the layers and the fix, while ``init_from``
fine-tunes the head as before. Every folder is built here, tiny, random init; nothing is downloaded."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.errors import ConfigError

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "quick", "brown", "fox", "cat", "sleeps", "."]
MLM = ["head.dense.weight", "head.dense.bias", "head.norm.weight", "head.norm.bias", "head.decoder.bias"]
NSP = ["head.nsp.weight", "head.nsp.bias"]
UNTRAINED = {"model": MLM + NSP, "qa": MLM, "nsp": MLM, "tok": MLM, "choice": MLM + NSP, "mlm": [], "pre": []}
TINY_TRAIN = {"steps": 2, "batch_size": 2, "eval_every": 2, "log_every": 1}


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """One folder per BERT class (UNTRAINED's keys), each with its WordPiece tokenizer; lines.txt for text_mlm."""
    from tokenizers import BertWordPieceTokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("untrained_head")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(str(root / "vocab.txt"))._tokenizer)
    for name, cls in (("model", transformers.BertModel), ("qa", transformers.BertForQuestionAnswering),
                      ("nsp", transformers.BertForNextSentencePrediction),
                      ("tok", transformers.BertForTokenClassification),
                      ("choice", transformers.BertForMultipleChoice), ("mlm", transformers.BertForMaskedLM),
                      ("pre", transformers.BertForPreTraining)):
        cls(transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, max_position_embeddings=32)).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    (root / "lines.txt").write_text("".join(f"the quick brown fox {w} sleeps .\n" for w in WORDS[5:] * 4))
    return root


def mlm_recipe(root, source: str, head: str = "masked_lm") -> str:
    path = root / f"mlm_{source}_{head}.yaml"
    path.write_text(yaml.safe_dump({
        "init_from": f"hf:{root / source}",
        "model": {"architecture": "encoder", "head": {"name": head}},
        "data": {"name": "text_mlm", "args": {"files": [str(root / "lines.txt")], "max_length": 16,
                                              "line_by_line": True, "val_fraction": 0.2, "test_fraction": 0.2}},
        "train": TINY_TRAIN}))
    return str(path)


@pytest.mark.parametrize("name", sorted(UNTRAINED))
def test_load_pretrained_records_the_untrained_head_and_warns(bert, name, recwarn):
    """It gave a model with a random masked-LM head and no word; now ``model.untrained`` names the parameters the
    folder did not give, with one warning naming them and the fix. Folders with the head load without either."""
    from xformer.interop.pretrained import load_pretrained

    model, _ = load_pretrained(f"hf:{bert / name}")
    assert model.untrained == frozenset(UNTRAINED[name])
    ours = [str(w.message) for w in recwarn.list if "not read from the checkpoint" in str(w.message)]
    if not UNTRAINED[name]:
        assert ours == []
        return
    assert len(ours) == 1 and "head.dense" in ours[0] and "untrained" in ours[0], ours
    assert f"--init-from hf:{bert / name}" in ours[0] and "BertForMaskedLM" in ours[0], ours[0]
    # the encoder is the checkpoint's all the same: its hidden states are transformers' BertModel's
    hf = transformers.BertModel.from_pretrained(bert / name, add_pooling_layer=False).eval()
    ids = torch.tensor([[2, 5, 7, 9, 3]])
    with torch.no_grad():
        ours_out = model({"input_ids": ids, "attention_mask": torch.ones_like(ids)})["hidden_states"]
        torch.testing.assert_close(ours_out, hf(input_ids=ids).last_hidden_state, atol=1e-4, rtol=0)


def test_load_bert_records_what_it_warns_of(bert):
    from xformer.interop.hf_bert import load_bert

    with pytest.warns(UserWarning, match="no weights for"):
        model = load_bert(bert / "model")
    assert model.untrained == frozenset(MLM + NSP)
    assert load_bert(bert / "mlm").untrained == frozenset()


@pytest.mark.parametrize("fmt", ["hf", "onnx"])
def test_exporting_an_untrained_head_is_refused(bert, tmp_path, fmt):
    """export_model wrote a BertForPreTraining whose masked-LM and NSP layers were random, as if trained."""
    from xformer.interop.export import export_model
    from xformer.interop.pretrained import load_pretrained

    with pytest.warns(UserWarning):
        model, _ = load_pretrained(f"hf:{bert / 'model'}")
    with pytest.raises(ConfigError) as e:
        export_model(model, fmt, tmp_path / "out")
    message = str(e.value)
    assert "\n" not in message and "head.dense" in message and "random weights" in message, message
    assert "fine-tune it first" in message and "BertForMaskedLM" in message, message
    assert not (tmp_path / "out").exists()


def test_save_bert_refuses_an_untrained_head(bert, tmp_path):
    from xformer.interop.hf_bert import load_bert, save_bert

    with pytest.warns(UserWarning):
        model = load_bert(bert / "qa")
    with pytest.raises(ConfigError, match="head.dense"):
        save_bert(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["model", "qa"])
def test_evaluate_of_the_folder_names_the_untrained_head(bert, name, cli_error):
    """It pointed to `xformer evaluate RECIPE.yaml init_from=hf:FOLDER`, which can only score random head weights
    for such a folder; now it names the untrained layers and the fix."""
    err = cli_error(["evaluate", bert / name], "head.dense", "random weights", "fine-tune it first",
                    f"--init-from hf:{bert / name}", "BertForMaskedLM")
    assert "init_from=hf:" not in err, err


def test_evaluate_of_a_recipe_names_the_untrained_head_and_the_fix(bert, cli_error):
    cli_error(["evaluate", mlm_recipe(bert, "model")], "fresh (head.dense.weight", "random weights",
              f"--init-from hf:{bert / 'model'}", "BertForMaskedLM")


def test_a_masked_lm_recipe_reads_the_masked_lm_head_of_a_pretraining_folder(bert, capsys):
    """masked_lm and masked_lm_nsp are one head (nsp or not): a BertForPreTraining folder's masked-LM layers were
    left fresh under a masked_lm recipe (and the other way round), so evaluate refused a trained head."""
    capsys.readouterr()
    assert main(["evaluate", mlm_recipe(bert, "pre")]) == 0
    out, err = capsys.readouterr()
    assert "left fresh: none" in err and "test_mlm_accuracy" in json.loads(out), err
    assert main(["evaluate", mlm_recipe(bert, "mlm", "masked_lm_nsp")]) == 2  # its NSP layers are not there
    err = capsys.readouterr().err
    assert "head.pooler, head.nsp" in err and "head.dense" not in err, err


def test_predict_on_the_folder_says_its_head_is_untrained(bert, monkeypatch, cli_error):
    """It said "a BertModel (read with a masked_lm_nsp head)", as if the folder held one."""
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    err = cli_error(["predict", bert / "model", "-"], "BertModel", "untrained", "head.dense", "--init-from hf:")
    assert "read with a masked_lm_nsp head" not in err, err


def test_a_hugging_face_folder_as_teacher_says_to_fine_tune_it_first(bert, tmp_path, cli_error):
    """A teacher is a classification run (distillation trains a classifier: no masked-LM teacher exists); a
    Hugging Face folder was "not a run folder (no config.yaml ...)" without the way to make one of it."""
    (tmp_path / "texts.csv").write_text("text,label\n" + "".join(f"the quick fox {i},{i % 2}\n" for i in range(20)))
    recipe = tmp_path / "cls.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "text_classification", "args": {"files": [str(tmp_path / "texts.csv")], "max_length": 16}},
        "train": TINY_TRAIN, "distill": {"teacher": str(bert / "model")}}))
    cli_error(["train", recipe, "--init-from", f"hf:{bert / 'mlm'}", "--out", tmp_path / "run"],
              "Hugging Face folder", f"--init-from hf:{bert / 'model'}")


def test_init_from_fine_tunes_the_head_and_the_run_is_trained(bert, tmp_path, capsys):
    """init_from keeps working: its summary names the layers left fresh (and qa_outputs, left unread), the run
    trains them, and the run's model has nothing untrained: it evaluates and exports."""
    from xformer.train.run import load_run_model

    for name in ("model", "qa"):
        capsys.readouterr()
        run = tmp_path / name
        assert main(["train", mlm_recipe(bert, name), "--out", str(run), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "left fresh: head.dense, head.norm, head.decoder;" in out, out
        assert name != "qa" or "not read: qa_outputs" in out, out
        assert load_run_model(run)[1].untrained == frozenset()
        assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / f"{name}_hf")]) == 0
        assert main(["evaluate", str(run)]) == 0
