"""train.activation_checkpointing together with DDP, FSDP2 (2 gloo processes on CPU), a resume and train.compile:
the blocks recompute their activations in the backward pass (their modules run again) and the run trains to the
losses and weights of the same run without it, bit for bit, dropout and drop path included.

The two-process runs share one torchrun launch (this file run as a script: ``two_process_runs``), since a launch
costs seconds that the runs themselves do not."""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import torch

import xformer
from xformer.config import from_dict
from xformer.train.config import ExperimentConfig
from xformer.train.distributed import World, full_state
from xformer.train.run import build
from xformer.train.trainer import Trainer

RECIPE = {  # an encoder-decoder: both stacks and the cross-attention recompute; accumulation runs DDP's no_sync
    "model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 2, "n_heads": 2, "dropout": 0.1,
                                                           "drop_path": 0.1},
              "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "reverse_digits", "args": {"n_train": 128, "n_val": 32, "n_test": 32}},
    "train": {"steps": 4, "batch_size": 16, "grad_accum": 2, "lr": 1e-2, "eval_every": 2, "log_every": 1,
              "device": "cpu", "clip": None},
}


class Losses:
    """What ``Trainer.fit`` logs, kept in memory: the train and val losses of every step."""

    def __init__(self):
        self.values = []

    def write(self, step, values, left=None):  # RunLog's: left, the run's seconds left, is not kept
        self.values += [values[key] for key in ("train_loss", "val_loss") if key in values]


def trainer(world: World, run_dir=None, **train) -> Trainer:
    config = from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], **train}})
    model, data = build(config)
    return Trainer(model, data, config.train, run_dir, world)


def count_block_calls(t: Trainer) -> list:
    """A counter of the forward calls made under autograd by the modules inside the core's blocks: a block that
    recomputes runs them again in the backward pass."""
    calls = [0]

    def count(module, inputs, output):
        calls[0] += torch.is_grad_enabled()  # evaluation runs them too, without gradients

    for block in (b for stack in (t.model.core.encoder, t.model.core.decoder) for b in stack.blocks):
        for module in block.children():
            module.register_forward_hook(count)
    return calls


def two_process_runs(out: Path) -> None:
    """Under torchrun: each of DDP and FSDP2 with and without activation checkpointing, and a checkpointed DDP run
    interrupted after step 2 and resumed; rank 0 saves each run's losses, full weights and block calls to ``out``."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    world, results = World(dist.get_rank(), dist.get_world_size()), {}
    for strategy, recompute in itertools.product(("ddp", "fsdp"), (False, True)):
        t, log = trainer(world, distributed=strategy, activation_checkpointing=recompute), Losses()
        calls = count_block_calls(t)
        t.fit(log)
        results[strategy, recompute] = log.values, full_state(t.model, t.optimizer, t.sharded)[0], calls[0]

    save = Trainer.save

    def save_then_stop(self):
        save(self)
        if self.step == 2:
            raise KeyboardInterrupt

    Trainer.save, run_dir = save_then_stop, out / "cut"
    t = trainer(world, run_dir, activation_checkpointing=True)
    try:
        t.fit()
    except KeyboardInterrupt:
        assert t.step == 2
    Trainer.save = save
    if t.folder_lock is not None:
        t.folder_lock.release()
    t, log = trainer(world, run_dir, activation_checkpointing=True), Losses()
    t.resume()
    t.fit(log)
    results["resumed"] = log.values, full_state(t.model, t.optimizer, False)[0], None
    if world.main:
        torch.save(results, out / "results.pt")
    dist.destroy_process_group()


def test_two_processes_train_alike_with_and_without_recomputation(tmp_path):
    here = str(Path(xformer.__file__).parents[1])  # the processes import the xformer this test does
    paths = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": paths}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             __file__, str(tmp_path)], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    results = torch.load(tmp_path / "results.pt")
    for strategy in ("ddp", "fsdp"):
        (plain_losses, plain, plain_calls), (losses, weights, calls) = results[strategy, False], results[strategy, True]
        # recomputed, not merely wrapped (the recomputation stops once it has rebuilt what backward needs)
        assert 0 < plain_calls < calls <= 2 * plain_calls, strategy
        assert len(losses) == 4 + 2 and losses == plain_losses, strategy
        assert weights.keys() == plain.keys()
        for key in plain:
            assert torch.equal(weights[key], plain[key]), (strategy, key)
    # the resumed run logged steps 3 and 4 (and its evaluation at 4) as the uninterrupted one did
    resumed_losses, resumed, _ = results["resumed"]
    whole_losses, whole, _ = results["ddp", True]
    assert resumed_losses == whole_losses[-3:]
    for key in whole:
        assert torch.equal(resumed[key], whole[key]), key


def test_compiled_recomputation_trains_to_the_eager_weights(monkeypatch):
    """train.compile with the checkpointed blocks traced into the graph (Dynamo's tag_activation_checkpoint, not a
    graph break into eager). The backend is aot_eager: Dynamo and AOTAutograd, which take the checkpoint apart,
    without Inductor's C++ code generation (about a minute on CPU; docs/training.md gives its measured result)."""
    from torch._dynamo.backends.registry import lookup_backend

    compile_, traced = torch.compile, set()

    def aot_eager(graph, inputs):
        traced.update(str(node.target) for node in graph.graph.nodes)
        return lookup_backend("aot_eager")(graph, inputs)

    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: compile_(model, backend=aot_eager, **kwargs))
    runs = {}
    try:  # the training steps alone: an evaluation would compile another graph (no gradient), not checkpointed
        for compiled in (False, True):
            t = trainer(World(), activation_checkpointing=True, compile=compiled)
            batches = t._batches()
            runs[compiled] = [t._step(batches) for _ in range(3)], dict(t.model.named_parameters())
    finally:
        torch._dynamo.reset()  # no code compiled by this backend stays for later tests
    assert "tag_activation_checkpoint" in traced
    assert runs[True][0] == runs[False][0]
    for name, p in runs[False][1].items():
        assert torch.equal(runs[True][1][name], p), name


if __name__ == "__main__":
    two_process_runs(Path(sys.argv[1]))
