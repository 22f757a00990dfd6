"""`xformer train` under torchrun (2 gloo processes on CPU) with DDP, train.compile, activation checkpointing and
gradient accumulation together, stopped after a checkpoint and resumed: the run folder survives the stop, the
resume ends on the weights of the uninterrupted run, and the folder's checkpoints hold the plain model's names (no
``module.`` of DDP, no ``_orig_mod.`` of torch.compile): ``evaluate_run`` (``xformer evaluate``) and ``load_run``
read them in one process, uncompiled.

torch.compile runs with the backend aot_eager (Dynamo and AOTAutograd, which take the checkpointed blocks apart
under DDP's graph splitting) rather than Inductor, whose C++ compilation takes about half a minute per run here;
docs/training.md gives the Inductor runs checked by hand. This file is also the processes' script: ``python
this_file.py STOP_STEP ARGS...`` runs ``xformer ARGS...``, stopped by a KeyboardInterrupt on every rank right after
the checkpoint of STOP_STEP (0: never)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

import xformer
from xformer.train.checkpoint import checkpoint_dir
from xformer.train.run import evaluate_run, load_run

RECIPE = {  # dropout: the resumed run must replay every rank's random state
    "model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32,
                                                           "dropout": 0.1},
              "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "reverse_digits", "args": {"n_train": 128, "n_val": 32, "n_test": 32, "min_len": 6,
                                                "max_len": 6}},
    "train": {"steps": 4, "batch_size": 16, "grad_accum": 2, "lr": 1e-2, "eval_every": 2, "log_every": 1,
              "device": "cpu", "clip": None, "compile": True, "activation_checkpointing": True},
}


def torchrun(stop_step: int, *args) -> subprocess.CompletedProcess:
    here = str(Path(xformer.__file__).parents[1])  # the processes import the xformer this test does
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH",
                                                                                                      "")])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           __file__, str(stop_step), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=240)


def weights(run: Path) -> dict:
    return load_file(checkpoint_dir(run / "checkpoints") / "model.safetensors")


def test_a_compiled_checkpointed_ddp_run_stops_resumes_and_loads_in_one_process(tmp_path):
    recipe = tmp_path / "reverse.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    whole = torchrun(0, "train", recipe, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert json.loads(whole.stdout) == metrics  # printed once, by rank 0, which wrote them
    cut = torchrun(2, "train", recipe, "--out", tmp_path / "cut")
    assert cut.returncode != 0 and "xformer: interrupted" in cut.stderr, cut.stderr[-3000:]
    # every rank stopped; rank 0 had saved step 2, and no other rank may remove the folder it alone writes
    assert checkpoint_dir(tmp_path / "cut" / "checkpoints").name == "step_00000002"
    resumed = torchrun(0, "train", "--resume", tmp_path / "cut")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    assert not [key for key in a if key.startswith(("module.", "_orig_mod.")) or "._orig_mod." in key]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # this process, no torch.compile: evaluate_run (xformer evaluate) gives the metrics the run wrote, load_run the
    # same weights
    again = evaluate_run(tmp_path / "cut")
    for key in ("val_loss", "test_loss", "test_token_accuracy"):
        assert abs(again[key] - metrics[key]) < 1e-5, key
    model = load_run(tmp_path / "cut", "latest")[1]
    assert not isinstance(model, torch._dynamo.eval_frame.OptimizedModule)
    for name, p in model.state_dict().items():
        if name in a:  # the tied LM head is stored once
            assert torch.equal(p, a[name]), name


def test_accumulation_skips_the_all_reduce_of_a_compiled_ddp_model():
    """train.grad_accum under DDP all-reduces the last micro-batch's gradients alone (DDP's no_sync), also through
    torch.compile's wrapper, which is no DistributedDataParallel (nothing is compiled until it is called)."""
    import torch.distributed as dist

    from xformer.train.distributed import grad_sync

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
        for engine in (ddp, torch.compile(ddp)):
            with grad_sync(engine, enabled=False):
                assert not ddp.require_backward_grad_sync
            with grad_sync(engine, enabled=True):
                assert ddp.require_backward_grad_sync
    finally:
        dist.destroy_process_group()


def stopped_after(step: int, argv: list[str]) -> int:
    from torch._dynamo.backends.registry import lookup_backend

    from xformer.cli import main
    from xformer.train.trainer import Trainer

    compile_, save = torch.compile, Trainer.save
    torch.compile = lambda model, **kwargs: compile_(model, backend=lookup_backend("aot_eager"), **kwargs)

    def save_then_stop(self):
        save(self)
        if self.step == step:
            raise KeyboardInterrupt

    Trainer.save = save_then_stop
    return main(argv)


if __name__ == "__main__":
    sys.exit(stopped_after(int(sys.argv[1]), sys.argv[2:]))
