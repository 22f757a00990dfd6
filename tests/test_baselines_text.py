"""Text baselines (n-gram neural LM, Elman RNN / LSTM LMs, LSTM encoder-decoder with Bahdanau attention):
the LM head's loss conventions, causality, padding, the config path, and that each one learns a tiny task."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from xformer.baselines.text import LSTMLM, LSTMSeq2Seq, NGramLM
from xformer.config import ConfigError, from_dict
from xformer.data.registry import build_data
from xformer.data.synthetic import PAD, reverse_batch
from xformer.heads.lm import IGNORE_INDEX
from xformer.models import ModelConfig, PartConfig, build_model
from xformer.train.config import ExperimentConfig, with_implied_args
from xformer.train.distributed import World
from xformer.train.run import build
from xformer.train.trainer import Trainer

V = 13
LMS = {"ngram_lm": {"context": 3, "embed_dim": 8, "hidden_dim": 16},
       "rnn_lm": {"embed_dim": 16, "hidden_dim": 16, "n_layers": 2},
       "lstm_lm": {"embed_dim": 16, "hidden_dim": 16, "n_layers": 2, "tie_weights": True}}


def baseline(name: str, **args) -> torch.nn.Module:
    return build_model(ModelConfig(baseline=PartConfig(name, {"vocab_size": V, **args}))).eval()


def seq2seq(**args) -> LSTMSeq2Seq:
    return baseline("lstm_seq2seq", embed_dim=8, hidden_dim=16, **args)


@pytest.mark.parametrize("name", list(LMS))
def test_lm_output_and_loss_conventions(name):
    model = baseline(name, **LMS[name])
    ids = torch.randint(0, V, (3, 10))
    labels = torch.randint(0, V, (3, 10))
    labels[0, :4] = labels[2, 7:] = IGNORE_INDEX
    out = model({"input_ids": ids, "labels": labels})
    assert out["logits"].shape == (3, 10, V)
    scored = labels != IGNORE_INDEX
    assert out["loss_weight"].item() == 30 - 7
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"][scored], labels[scored]))
    assert set(model({"input_ids": ids})) == {"logits"}


@pytest.mark.parametrize("name", list(LMS))
def test_lms_are_causal(name):
    model = baseline(name, **LMS[name])
    ids = torch.randint(0, V, (2, 12))
    changed = ids.clone()
    changed[:, 6:] = (ids[:, 6:] + 1) % V
    before, after = model({"input_ids": ids})["logits"], model({"input_ids": changed})["logits"]
    assert torch.equal(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_ngram_lm_reads_only_the_last_n_minus_1_tokens():
    model = baseline("ngram_lm", context=3, embed_dim=8, hidden_dim=16)
    ids = torch.randint(0, V, (2, 12))
    logits = model({"input_ids": ids})["logits"]
    t = 8
    outside, inside = ids.clone(), ids.clone()
    outside[:, t - 3] = (ids[:, t - 3] + 1) % V  # one token before the window w_{t-2..t}
    inside[:, t - 2] = (ids[:, t - 2] + 1) % V
    assert torch.equal(model({"input_ids": outside})["logits"][:, t], logits[:, t])
    assert not torch.allclose(model({"input_ids": inside})["logits"][:, t], logits[:, t])
    # the first positions see the learned padding embedding: a row that starts with the same 2 tokens agrees
    other = torch.cat([ids[:, :2], torch.randint(0, V, (2, 10))], dim=1)
    assert torch.equal(model({"input_ids": other})["logits"][:, :2], logits[:, :2])


@pytest.mark.parametrize("name", list(LMS))
def test_lm_left_padding_reads_as_the_start(name):
    """generate() left-pads prompts; a padded row must score its real tokens as it would alone."""
    model = baseline(name, **LMS[name])
    ids = torch.randint(0, V, (1, 7))
    alone = model({"input_ids": ids})["logits"]
    padded = torch.cat([torch.full((1, 3), PAD), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 3), torch.ones(1, 7)], dim=1).long()
    out = model({"input_ids": padded, "attention_mask": mask})["logits"]
    assert torch.allclose(out[:, 3:], alone, atol=1e-6)


def test_seq2seq_attention_covers_real_source_tokens_only_and_padding_changes_nothing():
    model = seq2seq(dropout=0.3, pad_id=PAD)  # eval mode: dropout off
    batch = reverse_batch(4, min_len=2, max_len=7, generator=torch.Generator().manual_seed(1))
    batch["src_ids"] = F.pad(batch["src_ids"], (0, 3), value=PAD)  # more padding than any row needs
    batch["src_mask"] = F.pad(batch["src_mask"], (0, 3), value=False)
    out = model(batch)
    attention = out["attention"]
    assert attention.shape == (4, 8, 10) and out["logits"].shape == (4, 8, V)
    assert torch.allclose(attention.sum(-1), torch.ones(4, 8))
    assert (attention[~batch["src_mask"][:, None].expand_as(attention)] == 0).all()
    assert (attention[batch["src_mask"][:, None].expand_as(attention)] > 0).all()
    for i in range(4):
        n = int(batch["src_mask"][i].sum())
        alone = model({"src_ids": batch["src_ids"][i:i + 1, :n], "input_ids": batch["input_ids"][i:i + 1]})
        assert torch.allclose(alone["logits"], out["logits"][i:i + 1], atol=1e-5)
        assert torch.allclose(alone["attention"], attention[i:i + 1, :, :n], atol=1e-6)
    # without src_mask, pad_id tells the padding
    no_mask = model({k: v for k, v in batch.items() if k != "src_mask"})
    assert torch.allclose(no_mask["logits"], out["logits"], atol=1e-6)


def test_seq2seq_loss_and_causal_decoder():
    model = seq2seq()
    batch = reverse_batch(3, generator=torch.Generator().manual_seed(2))
    out = model(batch)
    scored = batch["labels"] != IGNORE_INDEX
    assert out["loss_weight"].item() == int(scored.sum())
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"][scored], batch["labels"][scored]))
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][:, 4:] = (batch["input_ids"][:, 4:] + 1) % V
    assert torch.equal(model(changed)["logits"][:, :4], out["logits"][:, :4])
    # a one-token target (greedy decoding's first step) is a prefix of the teacher-forced run
    first = model({"src_ids": batch["src_ids"], "src_mask": batch["src_mask"], "input_ids": batch["input_ids"][:, :1]})
    assert torch.allclose(first["logits"], out["logits"][:, :1], atol=1e-6)


def test_config_path_fills_the_data_arguments_and_rejects_bad_keys():
    data = build_data("text_lm", {"block_size": 16})
    config = ModelConfig(baseline=PartConfig("ngram_lm", {"context": 2}))
    config = with_implied_args(config, data.model_args)
    assert config.baseline.args == {"context": 2, "vocab_size": data.model_args["tokenizer"]["vocab_size"]}
    model = build_model(config)
    assert isinstance(model, NGramLM) and model.out.out_features == config.baseline.args["vocab_size"]
    out = model((data.collate or default_collate)([data.train[i] for i in range(4)]))
    assert abs(out["loss"].item() - math.log(model.vocab_size)) < 1.0  # untrained: about uniform

    config = ModelConfig(baseline=PartConfig("lstm_seq2seq", {"hidden_dim": 8}))
    config = with_implied_args(config, {"tokenizer": {"vocab_size": 50, "max_positions": 65, "pad_id": 0}})
    assert config.baseline.args == {"hidden_dim": 8, "vocab_size": 50, "pad_id": 0}  # not max_positions
    assert build_model(config).pad_id == 0

    lstm = build_model(ModelConfig(baseline=PartConfig("lstm_lm", {"vocab_size": V, "tie_weights": True})))
    assert isinstance(lstm, LSTMLM) and lstm.out.weight is lstm.embed.weight
    with pytest.raises(ConfigError, match="unknown baseline.args key 'hiden_dim' for baseline 'lstm_lm'; "
                                          "did you mean hidden_dim"):
        build_model(ModelConfig(baseline=PartConfig("lstm_lm", {"vocab_size": V, "hiden_dim": 8})))
    with pytest.raises(ConfigError, match="tie_weights needs embed_dim == hidden_dim"):
        build_model(ModelConfig(baseline=PartConfig("rnn_lm", {"vocab_size": V, "hidden_dim": 8,
                                                                "tie_weights": True})))


def fibonacci_batch(n: int, length: int, generator: torch.Generator) -> dict:
    """x_{t+1} = (x_t + x_{t-1}) mod 10 from two random digits: the next token is a function of the last two."""
    ids = torch.randint(0, 10, (n, length + 1), generator=generator)
    for t in range(2, length + 1):
        ids[:, t] = (ids[:, t - 1] + ids[:, t - 2]) % 10
    labels = ids[:, 1:].clone()
    labels[:, 0] = IGNORE_INDEX  # x_1 is random: unpredictable
    return {"input_ids": ids[:, :-1], "labels": labels}


@pytest.mark.parametrize("context, learns", [(2, True), (1, False)])
def test_ngram_lm_learns_a_rule_of_the_last_two_tokens_and_a_bigram_cannot(context, learns):
    torch.manual_seed(0)
    model = NGramLM(10, context=context, embed_dim=16, hidden_dim=64).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = model(fibonacci_batch(64, 12, g))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = fibonacci_batch(256, 12, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        predicted = model(test)["logits"].argmax(-1)
    scored = test["labels"] != IGNORE_INDEX
    accuracy = (predicted[scored] == test["labels"][scored]).float().mean().item()
    assert accuracy > 0.99 if learns else accuracy < 0.5


def train_on(name: str, args: dict, data: str, data_args: dict, steps: int) -> dict:
    """The project's path: recipe -> build (the data fills vocab_size) -> Trainer -> the data's greedy metric."""
    config = from_dict(ExperimentConfig, {
        "model": {"baseline": {"name": name, "args": args}},
        "data": {"name": data, "args": {"n_train": 64 * steps, "n_val": 256, "n_test": 256, **data_args}},
        "train": {"steps": steps, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.0, "warmup_steps": steps // 10,
                  "eval_every": steps, "log_every": steps, "device": "cpu"}})
    model, data = build(config)
    data.val = None
    trainer = Trainer(model, data, config.train, None, World())
    trainer.fit()
    return trainer.evaluate("test")


@pytest.mark.parametrize("name", ["rnn_lm", "lstm_lm"])
def test_recurrent_lms_learn_to_copy_digits(name):
    metrics = train_on(name, {"embed_dim": 32, "hidden_dim": 64}, "copy_digits", {"length": 3}, steps=400)
    assert metrics["token_accuracy"] > 0.95 and metrics["loss"] < 0.2


def test_lstm_seq2seq_learns_to_reverse_digits():
    metrics = train_on("lstm_seq2seq", {"embed_dim": 32, "hidden_dim": 48}, "reverse_digits",
                       {"min_len": 3, "max_len": 6}, steps=150)
    assert metrics["token_accuracy"] > 0.95 and metrics["loss"] < 0.2


def test_xformer_generate_continues_a_prompt_with_a_baseline_lm(tmp_path, capsys):
    """A baseline LM run is a text run like any other: `xformer generate` decodes it (no KV cache)."""
    from xformer.cli import main
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    text = tmp_path / "abc.txt"
    text.write_text("abc" * 800)
    recipe = tmp_path / "lstm.yaml"
    recipe.write_text(f"""
model: {{baseline: {{name: lstm_lm, args: {{embed_dim: 16, hidden_dim: 32}}}}}}
data: {{name: text_lm, args: {{files: {text}, tokenizer: char, block_size: 16}}}}
train: {{steps: 120, batch_size: 16, lr: 1.0e-2, eval_every: 120, device: cpu}}
""")
    train_run(load_experiment(recipe), tmp_path / "run")
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "run"), "--prompt", "abcab", "--max-new-tokens", "7", "--greedy"]) == 0
    assert capsys.readouterr().out.strip() == "abcabcabcabc"
