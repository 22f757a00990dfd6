"""Audit 20 (core and training loop): behaviour a mutation audit found no test pinned.

The optimizer step's order (normalise by the target count, then clip, then step, then schedule; the stop on an
infinite loss is a case of test_train_loop's NaN test), early stopping's handling of ties, a second Ctrl-C
versus a second SIGTERM, the "best" checkpoint of a run without validation, the folder lock between two
processes, the core's dropout rates, generation in eval mode, RoPE's direction, and a few config, storage and
RNG details.
"""
import copy
import errno
import math
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from xformer.config import ConfigError, from_dict
from xformer.core import CoreConfig, DecoderBlock, EncoderBlock, RotaryEmbedding, build
from xformer.train.checkpoint import checkpoint_dir, save_checkpoint
from xformer.train.config import ExperimentConfig, TrainConfig
from xformer.train.distributed import World
from xformer.train.interrupt import TrainingInterrupted, deferred_stop
from xformer.train.run import build as build_run
from xformer.train.trainer import Trainer

RECIPE = {  # test_train_loop's reversal task: targets of 5 to 9 tokens, so the token count matters
    "model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "reverse_digits", "args": {"n_train": 128, "n_val": 32, "n_test": 32}},
    "train": {"steps": 4, "batch_size": 16, "lr": 1e-2, "eval_every": 100, "log_every": 100, "device": "cpu",
              "clip": None},
}


def trainer(run_dir=None, **train) -> Trainer:
    config = from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], **train}})
    model, data = build_run(config)
    return Trainer(model, data, config.train, run_dir, World())


# ---- the optimizer step -----------------------------------------------------------------------------------
def test_clipping_sees_the_token_mean_gradient_and_scales_it_to_the_clip(monkeypatch):
    """The trainer multiplies the summed w_i grad(L_i) by R / W *before* clipping: clip_grad_norm_ sees the norm
    of the gradient of the token-mean loss L (the reference below), and the optimizer receives
    min(1, clip / ||g||) g. Clipping the unnormalised sum would see a norm W times larger."""
    clip = 1e-3  # far below the gradient's norm: the step is clipped
    t = trainer(clip=clip, steps=1)
    reference = copy.deepcopy(t.model)
    norms, clip_grad_norm = [], torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        norm = clip_grad_norm(params, max_norm, *args, **kwargs)
        norms.append(float(norm))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    got = {}
    t.optimizer.register_step_pre_hook(lambda o, a, k: got.update(
        {n: p.grad.clone() for n, p in t.model.named_parameters() if p.grad is not None}))
    t.fit()

    t.sampler.set_epoch(0)
    batch = torch.utils.data.default_collate([t.data.train[i] for i in list(t.sampler)[:16]])
    reference(batch)["loss"].backward()
    g = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in g.values()])).item()
    assert len(norms) == 1 and norms[0] == pytest.approx(norm, rel=1e-4)
    assert norm > clip
    assert got.keys() == g.keys()
    for name in g:
        torch.testing.assert_close(got[name], g[name] * min(1.0, clip / norm), rtol=1e-3, atol=1e-9, msg=name)


def test_each_optimizer_step_uses_the_documented_warmup_then_cosine_rate():
    """The scheduler steps after the optimizer: step t (0-based) uses lr (t + 1) / (warmup + 1) during the warmup
    (LinearLR from lr / (warmup + 1)), then min_lr + (lr - min_lr) (1 + cos(pi t' / T)) / 2 with t' = t - warmup,
    T = steps - warmup. Stepping the scheduler first would skip the first rate and end one step early."""
    lr, warmup, steps = 1e-2, 3, 5
    t = trainer(steps=steps, warmup_steps=warmup, schedule="cosine")
    used = []
    t.optimizer.register_step_pre_hook(lambda o, a, k: used.append(o.param_groups[0]["lr"]))
    t.fit()
    expected = [lr * (s + 1) / (warmup + 1) if s < warmup else
                lr * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))) / 2 for s in range(steps)]
    assert expected == pytest.approx([lr / 4, lr / 2, 3 * lr / 4, lr, lr / 2])
    assert used == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_plateau_is_no_improvement_the_first_best_stays_and_patience_runs_out(tmp_path, mode):
    """An evaluation equal to the best is not an improvement: on a flat validation metric the best step stays
    the first evaluation's, and the run stops once ``patience`` evaluations have not improved on it."""
    t = trainer(tmp_path, steps=40, eval_every=2, early_stopping={"metric": "val_loss", "mode": mode, "patience": 2})
    t.evaluate = lambda split, max_batches=None: {"loss": 1.0}
    t.fit()
    assert (t.step, t.best_step, t.bad_evals, t.stopped_by) == (6, 2, 2, "early_stopping")
    assert checkpoint_dir(tmp_path / "checkpoints", "best").name == "step_00000002"


# ---- signals ----------------------------------------------------------------------------------------------
def test_a_second_ctrl_c_stops_at_once():
    """The first SIGINT is recorded (the step finishes); a second one raises TrainingInterrupted(twice(signum))
    at once, for a step that hangs; the exit status is the shell's 128 + 2."""
    reached = []
    with pytest.raises(TrainingInterrupted, match="stopped now: SIGINT") as raised:
        with deferred_stop(True, twice=lambda s: f"stopped now: {signal.Signals(s).name}") as request:
            signal.raise_signal(signal.SIGINT)
            reached.append(request.signum)
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)
            reached.append("after the second")
    assert reached == [signal.SIGINT] and raised.value.exit_status == 130


def test_a_second_sigterm_stays_deferred():
    """Only Ctrl-C asked twice stops mid-step: a second SIGTERM (a scheduler repeating its request) is recorded
    like the first, and the loop stops between steps with a checkpoint."""
    try:  # caught here: a KeyboardInterrupt escaping a test would end the whole pytest session
        with deferred_stop(True, twice=lambda s: "stopped now") as request:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            time.sleep(0.05)
    except TrainingInterrupted as e:
        pytest.fail(f"a second SIGTERM stopped at once: {e}")
    assert request.requested and request.signum == signal.SIGTERM


# ---- checkpoints and the run folder -----------------------------------------------------------------------
def test_without_a_best_checkpoint_best_is_the_latest_and_pruning_keeps_the_last_ones(tmp_path):
    """A run without a validation split never marks a checkpoint best: "best" resolves to the latest one,
    and keep_last keeps the last checkpoints (nothing pins the first)."""
    weights = {"a": torch.zeros(2)}
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, weights, {}, {"step": step}, set(), 2, False)
        assert checkpoint_dir(tmp_path, "best").name == f"step_{step:08d}"
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000002", "step_00000003"]


def test_a_folder_held_by_another_process_is_refused(tmp_path):
    """hold_folder takes an exclusive lock: while another process holds the folder, claiming it here raises
    ConfigError naming "another xformer process (pid N)"."""
    from xformer.folder_lock import hold_folder

    folder, ready = tmp_path / "run", tmp_path / "ready"
    code = ("import pathlib, sys, time\n"
            "from xformer.folder_lock import hold_folder\n"
            "lock = hold_folder(sys.argv[1], lambda h: 'busy ' + h)\n"
            "assert lock is not None\n"
            "pathlib.Path(sys.argv[2]).write_text('held')\n"
            "time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder), str(ready)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None, "the holding process ended before it held the folder"
            assert time.monotonic() < deadline, "the holding process did not hold the folder within 60 s"
            time.sleep(0.05)
        lock = None
        try:
            with pytest.raises(ConfigError, match=rf"busy another xformer process \(pid {holder.pid}\)"):
                lock = hold_folder(folder, lambda h: "busy " + h)
        finally:
            if lock is not None:
                lock.release()
    finally:
        holder.kill()
        holder.wait(timeout=30)


# ---- the core ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
@pytest.mark.parametrize("architecture", ["encoder", "decoder", "encoder-decoder"])
def test_every_block_gets_the_configured_dropout_rates(architecture, activation):
    """core.dropout drops inside the feed-forward (fc2(dropout(act(fc1 x)))) and on each residual branch;
    attn_dropout drops the attention weights and attn_proj_dropout the attention output after its projection."""
    cfg = CoreConfig(d_model=16, n_layers=2, n_heads=2, dropout=0.3, attn_dropout=0.2, attn_proj_dropout=0.1,
                     activation=activation)
    core = build.ARCHITECTURES[architecture](cfg)
    blocks = [m for m in core.modules() if isinstance(m, (EncoderBlock, DecoderBlock))]
    assert len(blocks) == (4 if architecture == "encoder-decoder" else 2)
    for block in blocks:
        mlp_drops = [m.p for m in block.mlp.modules() if isinstance(m, torch.nn.Dropout)]
        assert mlp_drops and all(p == 0.3 for p in mlp_drops)
        residuals = [block.res1, block.res2] + ([block.res_cross] if getattr(block, "cross_attn", None) else [])
        assert [r.dropout.p for r in residuals] == [0.3] * len(residuals)
        attentions = [block.attn] + ([block.cross_attn] if getattr(block, "cross_attn", None) else [])
        assert [(a.dropout, a.proj_drop.p) for a in attentions] == [(0.2, 0.1)] * len(attentions)


def test_rope_rotates_by_the_docstring_formula_at_an_offset():
    """rot(x)_i = x_i cos(p theta_i) - x_{i+d/2} sin(p theta_i), rot(x)_{i+d/2} = x_{i+d/2} cos(p theta_i)
    + x_i sin(p theta_i), theta_i = base^(-2i/d), computed by hand for positions offset .. offset+N-1
    (the direction matters for weights trained elsewhere: GPT-NeoX / LLaMA's rotate_half)."""
    d, base, offset = 8, 10000.0, 3
    torch.manual_seed(0)
    x = torch.randn(1, 1, 2, d)
    got = RotaryEmbedding(d, base)(x, offset=offset)
    for n in range(x.shape[2]):
        p = offset + n
        for i in range(d // 2):
            angle = p * base ** (-2 * i / d)
            a, b = x[0, 0, n, i].item(), x[0, 0, n, i + d // 2].item()
            assert got[0, 0, n, i].item() == pytest.approx(a * math.cos(angle) - b * math.sin(angle), abs=1e-5)
            assert got[0, 0, n, i + d // 2].item() == pytest.approx(b * math.cos(angle) + a * math.sin(angle),
                                                                    abs=1e-5)


def test_generate_runs_the_model_in_eval_mode_and_restores_its_mode():
    """A model left in train mode (dropout 0.5) decodes greedily as in eval mode, the same on every call, and is
    in train mode again afterwards; one in eval mode stays in eval mode."""
    from xformer import ModelConfig, PartConfig, build_model
    from xformer.generation import generate

    torch.manual_seed(0)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=2, n_heads=2, dropout=0.5),
                                    PartConfig("text", {"vocab_size": 50, "max_positions": 32}),
                                    PartConfig("causal_lm")))
    ids = torch.tensor([[1, 2, 3]])
    expected = generate(model.eval(), ids, max_new_tokens=10)
    assert not model.training
    model.train()
    for _ in range(3):
        assert torch.equal(generate(model, ids, max_new_tokens=10), expected)
        assert model.training


# ---- config, storage, RNG ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["clip", "max_seconds"])
@pytest.mark.parametrize("value", [0, 0.0])
def test_a_zero_clip_or_time_limit_is_refused_in_one_line(key, value):
    with pytest.raises(ConfigError) as raised:
        from_dict(TrainConfig, {"steps": 1, key: value})
    assert str(raised.value) == f"train.{key} must be > 0 (or null), got 0.0"


def test_a_bool_for_an_int_field_is_refused():
    """YAML's true is a Python bool, an int subclass: model.core.n_layers=true is refused, not one layer."""
    recipe = {**RECIPE, "model": {**RECIPE["model"], "core": {**RECIPE["model"]["core"], "n_layers": True}}}
    with pytest.raises(ConfigError) as raised:
        from_dict(ExperimentConfig, recipe)
    assert str(raised.value) == "model.core.n_layers: expected int, got True"


def test_a_full_disk_advises_space_and_a_permission_error_advises_permissions():
    from xformer.train.storage import describe

    full = describe(OSError(errno.ENOSPC, "No space left on device", "/x/model.safetensors"))
    denied = describe(OSError(errno.EACCES, "Permission denied", "/x/model.safetensors"))
    assert full.startswith("/x/model.safetensors: No space left on device (ENOSPC)")
    assert "free some space" in full and "permission" not in full
    assert denied.startswith("/x/model.safetensors: Permission denied (EACCES)")
    assert "check the permissions" in denied and "space" not in denied


def test_set_rng_state_restores_python_numpy_and_torch_generators():
    from xformer.train.rng import rng_state, set_rng_state

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    random.random(), np.random.rand(), torch.rand(1)  # somewhere inside each generator's stream
    saved = rng_state()
    first = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3).tolist())
    set_rng_state(saved)
    assert (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3).tolist()) == first
