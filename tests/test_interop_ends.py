"""Loose ends of the Hugging Face / timm interop as a user meets them: a BERT question-answering folder (and the
other BERT classes xformer has no head for), the round trip of a Hugging Face ViT through ``xformer export
--format timm`` and ``init_from: timm:``, a timm model name of another family than ViT, and the articles of the
output-folder messages. Every model is built here, tiny, random init."""
from __future__ import annotations

import io
import json

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.errors import ConfigError

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "quick", "brown", "fox", "cat", "sleeps", "."]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """qa (BertForQuestionAnswering), nsp (BertForNextSentencePrediction), decoder (BertLMHeadModel, is_decoder),
    each with its WordPiece tokenizer; texts.csv for a text classifier."""
    from tokenizers import BertWordPieceTokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("interop_ends")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(str(root / "vocab.txt"))._tokenizer)
    for name, cls, extra in (("qa", transformers.BertForQuestionAnswering, {}),
                             ("nsp", transformers.BertForNextSentencePrediction, {}),
                             ("decoder", transformers.BertLMHeadModel, {"is_decoder": True})):
        config = transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                                         **extra)
        cls(config).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    (root / "texts.csv").write_text("text,label\n" + "".join(f"the quick fox {i},{i % 2}\n" for i in range(20)))
    return root


# ---------------------------------------------------------------- 1. BERT classes without an xformer head


def test_a_question_answering_folder_is_named_by_predict_and_generate(bert, monkeypatch, cli_error):
    """predict said "a bert checkpoint without a classifier (masked_lm head)", as if the folder were a masked LM,
    and generate "a Hugging Face bert_text encoder": both now name BertForQuestionAnswering and its span scorer."""
    monkeypatch.setattr("sys.stdin", io.StringIO("the quick fox\n"))
    cli_error(["predict", str(bert / "qa"), "-"], "BertForQuestionAnswering", "qa_outputs",
              "answer-span scorer", "--init-from hf:")
    cli_error(["generate", str(bert / "qa"), "--prompt", "the", "--greedy", "--max-new-tokens", "2"],
              "BertForQuestionAnswering", "GPT-2")


def test_a_question_answering_folder_is_read_as_its_encoder_and_says_so(bert, capsys):
    """Its encoder is the starting point, and init_from's summary names qa_outputs as not read (it was left out
    without a word, the run reading as a masked LM fine-tuned from a masked LM)."""
    from xformer.interop.pretrained import load_source

    pre = load_source(f"hf:{bert / 'qa'}")
    assert pre.model.head.name != "classification" and pre.architecture == "BertForQuestionAnswering"
    assert pre.unread == {"qa_outputs": "answer-span scorer"}
    assert not [k for k in pre.weights if k.startswith("head.") and k != "head.decoder.weight"]
    recipe = bert / "cls.yaml"
    recipe.write_text(json.dumps({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                  "data": {"name": "text_classification",
                                           "args": {"files": [str(bert / "texts.csv")], "max_length": 16}},
                                  "train": {"steps": 1, "batch_size": 2}}))
    capsys.readouterr()
    assert main(["train", str(recipe), "--init-from", f"hf:{bert / 'qa'}", "--out", str(bert / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "not read: qa_outputs (BertForQuestionAnswering's answer-span scorer" in out, out


def test_other_bert_classes_are_named_too(bert, monkeypatch, cli_error):
    """A next-sentence classifier is named by predict; a BertLMHeadModel decoder is refused naming the class and
    what xformer reads instead."""
    monkeypatch.setattr("sys.stdin", io.StringIO("the quick fox\n"))
    cli_error(["predict", str(bert / "nsp"), "-"], "BertForNextSentencePrediction",
              "without a classifier")
    cli_error(["generate", str(bert / "decoder"), "--prompt", "the", "--greedy"],
              "BertLMHeadModel", "is_decoder", "GPT-2")


# ---------------------------------------------------------------- 2. a Hugging Face ViT out to timm and back


def test_a_vit_started_from_hugging_face_goes_to_timm_and_back(tmp_path, capsys, cli_error):
    """export --format timm of a run started from hf: was refused for its LayerNorm eps 1e-12 with the hint
    "train with model.core.norm_eps=1e-06", which init_from hf: then refused ("remove it from the recipe"). The
    hint now works: that run exports, and the timm file starts a run again."""
    from xformer.interop.pretrained import load_source

    torch.manual_seed(0)
    transformers.ViTForImageClassification(transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=8, patch_size=4,
        num_channels=1, num_labels=10)).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5],
                                   image_std=[0.5]).save_pretrained(tmp_path / "vit")
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                      "data": {"name": "digits"}, "train": {"steps": 1, "batch_size": 4}}))

    def train(out, *extra):
        capsys.readouterr()
        assert main(["train", str(recipe), *extra, "--out", str(tmp_path / out), "--quiet"]) == 0, capsys.readouterr()
        return capsys.readouterr().out

    train("as_is", "--init-from", f"hf:{tmp_path / 'vit'}")
    err = cli_error(["export", str(tmp_path / "as_is"), "--format", "timm", "--out", str(tmp_path / "t0")],
                    "LayerNorm eps 1e-12")
    hint = err.split("train with ")[1].split(")")[0]
    assert hint == "model.core.norm_eps=1e-06", err
    out = train("timm_eps", "--init-from", f"hf:{tmp_path / 'vit'}", hint)
    assert "LayerNorm eps 1e-06 (the recipe's) instead of the checkpoint's 1e-12" in out, out
    assert yaml.safe_load((tmp_path / "timm_eps" / "config.yaml").read_text())["model"]["core"]["norm_eps"] == 1e-6
    assert main(["export", str(tmp_path / "timm_eps"), "--format", "timm", "--out", str(tmp_path / "timm")]) == 0
    capsys.readouterr()
    source = f"timm:{tmp_path / 'timm' / 'model.safetensors'}#vit_tiny_patch16_224"
    assert load_source(source).model.core.norm_eps == 1e-6
    out = train("back", "--init-from", source)
    assert "left fresh: none" in out, out


# ---------------------------------------------------------------- 3. a timm model that is no ViT


@pytest.fixture(scope="module")
def timm_files(tmp_path_factory):
    import timm
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("timm_files")
    torch.manual_seed(0)
    for name, kwargs in (("resnet18", {}), ("vit_tiny_patch16_224", dict(img_size=8, patch_size=4, embed_dim=12,
                                                                          depth=1, num_heads=3))):
        model = timm.create_model(name, pretrained=False, num_classes=3, **kwargs)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / f"{name}.safetensors"))
    return root


@pytest.mark.parametrize("file, name", [("resnet18", "resnet18"), ("vit_tiny_patch16_224", "convnext_tiny"),
                                        ("vit_tiny_patch16_224", "resnet18.a1_in1k")])
def test_a_timm_name_of_another_family_is_refused_as_no_vit(timm_files, file, name):
    """It was "the file does not fit resnet18 (missing [], unexpected ['fc.bias', ...])" or "ResNet.__init__() got
    an unexpected keyword argument 'embed_dim'"."""
    from xformer.interop.pretrained import load_source

    with pytest.raises(ConfigError) as e:
        load_source(f"timm:{timm_files / f'{file}.safetensors'}#{name}")
    message = str(e.value)
    assert "\n" not in message and f"{name.split('.')[0]!r} is not a timm ViT" in message, message
    assert "vit_*" in message and "deit_*" in message, message


def test_a_file_that_is_no_vit_is_named_so(timm_files):
    """A ResNet's state dict given a ViT name: "missing ['cls_token', 'pos_embed', ...]" became one line saying the
    file holds no ViT."""
    from xformer.interop.pretrained import load_source

    with pytest.raises(ConfigError, match=r"holds no timm ViT \(no patch_embed.proj.weight"):
        load_source(f"timm:{timm_files / 'resnet18.safetensors'}#vit_tiny_patch16_224")
    assert load_source(f"timm:{timm_files / 'vit_tiny_patch16_224.safetensors'}#vit_tiny_patch16_224").kind == "timm"


# ---------------------------------------------------------------- 4. articles


def test_output_folder_messages_take_an_before_a_vowel(tmp_path):
    """"is a file, not a export folder" and "give a export folder outside it"."""
    from xformer.folders import OutputFolder

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not an export folder"):
        OutputFolder(tmp_path / "file", what="export")
    with pytest.raises(ConfigError, match="is a file, not a run folder"):
        OutputFolder(tmp_path / "file", what="run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("model: {}\n")
    (tmp_path / "run" / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="give an export folder outside it"):
        OutputFolder(tmp_path / "run" / "out", what="export")


def test_messages_naming_a_type_take_its_article():
    """"not a int", "got a int": the article now follows the word."""
    from xformer.errors import a_or_an
    from xformer.forecast.frames import load_frame
    from xformer.forecast.scoring import evaluate

    assert (a_or_an("run"), a_or_an("export"), a_or_an("EncoderDecoder")) == ("a run", "an export", "an EncoderDecoder")
    with pytest.raises(ConfigError, match=r"file, not an int$"):
        load_frame(3)
    with pytest.raises(ConfigError, match=r"got an int$"):
        evaluate(3)
