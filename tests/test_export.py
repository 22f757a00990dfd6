"""`xformer export RUN_DIR --format hf|timm|onnx --out DIR` (issue 16): tiny runs of each domain, trained through
the CLI for 2 steps, exported and reloaded by the target library itself, which must give the run's outputs."""
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.train.run import load_run_model

TASKS = Path(__file__).resolve().parents[1] / "tasks"
TINY = ["train.steps=2", "train.eval_every=2", "train.log_every=1", "train.warmup_steps=0", "train.batch_size=8",
        "train.device=cpu"]
GPT = {"model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 2, "n_heads": 2, "activation": "gelu"},
                 "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
       "data": {"name": "copy_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16, "length": 4}},
       "train": {"steps": 2, "lr": 1e-2}}
BERT = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 2, "n_heads": 2, "d_ff": 32,
                                                      "norm_first": False, "final_norm": False, "norm_eps": 1e-12},
                  "tokenizer": {"name": "bert_text"}, "head": {"name": "masked_lm"}},
        "data": {"name": "text_mlm", "args": {"tokenizer": "wordpiece", "vocab_size": 120, "min_frequency": 1,
                                              "max_length": 16, "line_by_line": True}},
        "train": {"steps": 2, "lr": 1e-2}}
RUNS = {  # name -> (recipe file or dict, overrides)
    "gpt_bias": (GPT, ["model.core.activation=gelu_tanh"]),
    "gpt_nobias": (GPT, ["model.core.bias=false", "model.core.qkv_bias=false"]),  # the project's GPT recipes
    "gpt_rope": (GPT, ["model.core.rope=true"]),
    "bert": (BERT, []),
    "vit": ("vit_digits.yaml", ["data.args.affine=false", "model.tokenizer.args.patch_size=4", "model.core.d_model=16",
                                "model.core.n_layers=2", "model.core.n_heads=2", "model.core.d_ff=32"]),
    "patchtst": ("patchtst_etth1_96.yaml", ["data.name=csv_series", "data.args.input_len=32", "data.args.horizon=8",
                                            "model.tokenizer.args.patch_len=8", "model.tokenizer.args.stride=4",
                                            "model.head.args.quantiles=[0.1,0.5,0.9]", "train.epochs=null", "train.schedule=constant",
                                            "train.early_stopping.patience=null", "train.eval_batch_size=64"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_runs")
    corpus = root / "corpus.txt"
    words = "the model reads a sentence and predicts the hidden word from both sides of it".split()
    corpus.write_text("\n".join(" ".join(words[i % 7:] + words[: i % 7]) + "." for i in range(80)))
    made = {}

    def run(name: str) -> Path:
        if name not in made:
            recipe, overrides = RUNS[name]
            if isinstance(recipe, dict):
                path = root / f"{name}.yaml"
                recipe = json.loads(json.dumps(recipe))
                if name == "bert":
                    recipe["data"]["args"]["files"] = str(corpus)
                path.write_text(yaml.safe_dump(recipe))
            else:
                path = TASKS / recipe
            out = root / name
            assert main(["train", str(path), *TINY, *overrides, "--out", str(out), "--quiet"]) == 0
            made[name] = out
        return made[name]

    return run


def export(run: Path, fmt: str, out: Path, *extra: str) -> int:
    return main(["export", str(run), "--format", fmt, "--out", str(out), *extra])


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("xformer: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize("name", ["gpt_bias", "gpt_nobias"])
def test_gpt_exports_to_a_folder_gpt2_from_pretrained_loads_with_the_same_logits(runs, name, tmp_path):
    from transformers import GPT2LMHeadModel

    run = runs(name)
    assert export(run, "hf", tmp_path / "hf") == 0
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    _, model = load_run_model(run)
    ids = torch.randint(0, model.config.tokenizer.args["vocab_size"], (3, 7))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model({"input_ids": ids})["logits"], atol=1e-4, rtol=0)
    biases = [p for n, p in hf.named_parameters() if n.endswith("bias") and ".ln_" not in n]
    assert biases and all(bool((b == 0).all()) for b in biases) == (name == "gpt_nobias")
    assert json.loads((tmp_path / "hf" / "export.json").read_text())["class"] == "GPT2LMHeadModel"


def test_the_vit_recipe_exports_to_a_folder_vit_for_image_classification_loads(runs, tmp_path):
    """tasks/vit_digits.yaml's ViT (grey 8x8 digits, no normalisation) as transformers' ViT: the same logits,
    the run's classes as id2label, an image processor that does not normalise."""
    from transformers import AutoImageProcessor, ViTForImageClassification

    run = runs("vit")
    assert export(run, "hf", tmp_path / "hf") == 0
    hf = ViTForImageClassification.from_pretrained(tmp_path / "hf").eval()
    _, model = load_run_model(run)
    images = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=images).logits, model({"images": images})["logits"], atol=1e-4,
                                   rtol=0)
    assert hf.config.id2label == {i: str(i) for i in range(10)}
    assert AutoImageProcessor.from_pretrained(tmp_path / "hf").do_normalize is False


def test_bert_exports_to_a_folder_bert_for_masked_lm_loads_with_the_same_logits(runs, tmp_path):
    from transformers import BertForMaskedLM

    run = runs("bert")
    assert export(run, "hf", tmp_path / "hf") == 0
    hf = BertForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    _, model = load_run_model(run)
    ids = torch.randint(0, model.config.tokenizer.args["vocab_size"], (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 5:] = 0
    types = (torch.arange(9) >= 4).long().expand(2, 9)
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        ours = model({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})["logits"]
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    from transformers import AutoTokenizer

    from xformer.data.vocab import load_vocab

    vocab, tokenizer = load_vocab(run / "tokenizer"), AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "The model predicts the hidden word."
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == vocab.encode(text)  # the run's ids
    # and BERT's template, as the model was trained on it: [CLS] A [SEP] B [SEP], B's part of token type 1
    pair = tokenizer("The model.", "A word.")
    a, b = vocab.encode("The model."), vocab.encode("A word.")
    assert pair["input_ids"] == [vocab.cls_id, *a, vocab.sep_id, *b, vocab.sep_id]
    assert pair["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert tokenizer(text)["input_ids"] == [vocab.cls_id, *vocab.encode(text), vocab.sep_id]
    assert tokenizer.mask_token_id == vocab.mask_id and tokenizer.pad_token_id == vocab.pad_id


def test_vit_exports_a_state_dict_timm_loads_strictly_with_the_same_logits(runs, tmp_path):
    import timm
    from safetensors.torch import load_file

    run = runs("vit")
    assert export(run, "timm", tmp_path / "timm") == 0
    config = json.loads((tmp_path / "timm" / "config.json").read_text())
    vit = timm.create_model(config["architecture"], pretrained=False, **config["model_args"]).eval()
    vit.load_state_dict(load_file(tmp_path / "timm" / "model.safetensors"), strict=True)
    from_folder = timm.create_model(f"local-dir:{tmp_path / 'timm'}", pretrained=True).eval()
    _, model = load_run_model(run)
    images = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        ours = model({"images": images})["logits"]
        torch.testing.assert_close(vit(images), ours, atol=1e-4, rtol=0)
        torch.testing.assert_close(from_folder(images), ours, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["gpt_nobias", "bert", "vit", "patchtst"])
def test_onnx_graph_gives_the_pytorch_outputs(runs, name, tmp_path):
    """Text LM, masked LM, image classifier, quantile forecaster (RevIN, BatchNorm, residual attention): the
    graph run by onnxruntime on inputs of another batch size (and length) than the export's equals PyTorch."""
    import onnxruntime

    from xformer.interop.onnx_export import example_inputs

    run = runs(name)
    assert export(run, "onnx", tmp_path / "onnx") == 0
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert report["checked_with"].startswith("onnxruntime") and max(report["max_abs_diff"].values()) < 1e-4
    _, model = load_run_model(run)
    inputs = example_inputs(model, 4, 6, torch.Generator().manual_seed(5))
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(inputs)
    got = session.run(report["outputs"], {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        want = model(dict(inputs))
    for out, value in zip(report["outputs"], got):
        torch.testing.assert_close(torch.from_numpy(value), want[out], atol=1e-4, rtol=0)
    expected = {"gpt_nobias": ["logits"], "bert": ["logits"], "vit": ["logits"], "patchtst": ["prediction", "quantiles"]}
    assert report["outputs"] == expected[name]
    # the run's files that say how to feed the graph and name its outputs, beside it
    from xformer.interop.onnx_export import RUN_FILES

    assert report["run_files"] == [f for f in (*RUN_FILES, "tokenizer/") if (run / f).exists()]
    assert set(report["run_files"]) >= {"vit": {"classes.json", "preprocess.json"}, "patchtst": {"series_scaler.json"},
                                        "bert": {"tokenizer/"}, "gpt_nobias": set()}[name]
    for f in report["run_files"]:
        assert (tmp_path / "onnx" / f).exists()


@pytest.mark.parametrize("name, fmt, words", [
    ("gpt_rope", "hf", ["cannot export to GPT-2", "rotary positions", "--format onnx"]),
    ("patchtst", "hf", ["cannot export to Hugging Face", "series_patches", "--format onnx"]),
    ("gpt_bias", "timm", ["cannot export to timm", "ViT classifiers"]),
    ("patchtst", "timm", ["cannot export to timm"]),
])
def test_what_the_target_cannot_express_is_one_line_and_nothing_is_written(runs, name, fmt, words, tmp_path, capsys):
    run = runs(name)
    capsys.readouterr()
    assert export(run, fmt, tmp_path / "out") == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "out").exists()


def test_out_folder_is_never_overwritten_unasked(runs, tmp_path, capsys):
    run, out = runs("gpt_bias"), tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert export(run, "hf", out) == 2
    one_line_error(capsys, "already holds files", "--overwrite")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert export(run, "hf", out, "--overwrite") == 2  # not an export (no export.json): the user's files stay
    one_line_error(capsys, "no export.json", "new folder")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    previous = tmp_path / "previous"
    assert export(run, "hf", previous) == 0
    (previous / "stale.txt").write_text("from the old export")
    assert export(run, "hf", previous, "--overwrite") == 0  # an export is replaced whole when asked
    assert not (previous / "stale.txt").exists() and (previous / "model.safetensors").is_file()
    capsys.readouterr()
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for target in (run, run.parent):  # never into the run itself, not even when asked
        for asked in ((), ("--overwrite",)):
            assert export(run, "hf", target, *asked) == 2
            one_line_error(capsys, "would hold the run folder itself")
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_checkpoint_choice_and_bad_checkpoint(runs, tmp_path, capsys):
    run = runs("gpt_bias")
    assert export(run, "hf", tmp_path / "last", "--checkpoint", "last") == 0
    assert json.loads((tmp_path / "last" / "export.json").read_text())["checkpoint"] == "step_00000002"
    capsys.readouterr()
    assert export(run, "hf", tmp_path / "bad", "--checkpoint", "step_7") == 2
    one_line_error(capsys, "--checkpoint step_7", "step_2")
    assert export(tmp_path, "hf", tmp_path / "x") == 2
    one_line_error(capsys, "not a run folder")
    with pytest.raises(SystemExit) as stop:  # argparse's choices, one line (OneLineParser)
        main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "y")])
    assert stop.value.code == 2
    one_line_error(capsys, "--format", "invalid choice: 'tflite'")


@pytest.mark.parametrize("fmt, module, extra", [("hf", "transformers", "hf"), ("onnx", "onnx", "onnx")])
def test_a_missing_extra_is_one_line_naming_the_pip_fix(runs, fmt, module, extra, tmp_path, capsys, monkeypatch):
    run = runs("gpt_bias")
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    capsys.readouterr()
    assert export(run, fmt, tmp_path / "out") == 2
    one_line_error(capsys, f'pip install "xformer[{extra}]"')
    assert not (tmp_path / "out").exists()


def test_the_python_interop_entry_points_name_the_extra_too(runs, monkeypatch):
    from xformer.interop.hf_bert import to_hf_bert
    from xformer.interop.hf_gpt2 import to_hf_gpt2
    from xformer.interop.support import MissingExtra

    monkeypatch.setitem(sys.modules, "transformers", None)
    _, model = load_run_model(runs("gpt_bias"))
    for convert in (to_hf_gpt2, to_hf_bert):
        with pytest.raises(ImportError, match=r'pip install "xformer\[hf\]"') as error:
            convert(model)
        assert isinstance(error.value, MissingExtra) and "\n" not in str(error.value)


def test_without_onnxruntime_the_graph_is_checked_by_the_onnx_checker_and_says_so(runs, tmp_path, monkeypatch):
    import onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert export(runs("vit"), "onnx", tmp_path / "onnx") == 0
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert report["checked_with"].startswith("onnx.checker only") and "max_abs_diff" not in report
    onnx.checker.check_model(str(tmp_path / "onnx" / "model.onnx"))


@pytest.mark.parametrize("fmt", ["hf", "timm", "onnx"])
def test_an_image_baseline_is_refused_in_one_line(fmt):
    """A CNN run's model is a plain torch module (no tokenizer, core, head): every format says so."""
    from xformer.baselines.images import CNNClassifier
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport

    with pytest.raises(CannotExport, match=r"cannot export the CNNClassifier baseline: --format \w+ covers"):
        check_exportable(CNNClassifier(8, 1, 10), fmt)


@pytest.mark.parametrize("fmt", ["hf", "timm", "onnx"])
def test_a_hand_edited_classes_json_of_another_count_is_refused_before_anything_is_written(runs, fmt, tmp_path,
                                                                                         capsys):
    """The export names the logits (id2label, timm's label_names, onnx's copy of classes.json) as predict does:
    a list of another length would name the wrong classes, so it is refused as predict refuses it."""
    pytest.importorskip("onnx") if fmt == "onnx" else None
    import shutil
    run = tmp_path / "vit"
    shutil.copytree(runs("vit"), run)
    names = json.loads((run / "classes.json").read_text())["class_names"]
    (run / "classes.json").write_text(json.dumps({"class_names": names[:-1]}))
    capsys.readouterr()
    assert export(run, fmt, tmp_path / "out") == 2
    one_line_error(capsys, "classes.json", f"lists {len(names) - 1} class names", f"predicts {len(names)} classes")
    assert not (tmp_path / "out").exists()
