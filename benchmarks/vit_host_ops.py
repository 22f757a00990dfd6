"""The host's work in xformer's ViT step beside timm's, on the CPU (benchmarks/README.md, "Then, on the CPU").

    python benchmarks/vit_host_ops.py [--pairs 600] [--bf16] [--out PATH]

At small sizes a GPU step waits on the host, so what the host does per op is what to compare. Counted in one
forward and backward of reference.py's ViT pair (same weights, batch 16): the ops that reach a kernel below
autograd and autocast, the views, and in the forward the torch calls made from Python and the module calls.
Timed at a tiny size (4 layers, d 48, 16 patches, batch 2, 1 thread: the compute is negligible), forward and
forward + backward, xformer against timm and against a copy of itself (the noise floor), alternating pairs.
Run it at an older commit for the figures before a change.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import PAIRS, SIZES, autocast  # noqa: E402 - benchmarks/reference.py, beside this script
from timing import alternate  # noqa: E402

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 4, "num_heads": 3, "num_classes": 10, "batch": 2}
METADATA = {"__get__", "dim", "is_floating_point"}  # attribute reads and queries the tensor answers itself


class Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.kernels = self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.is_view or func._schema.name in ("aten::detach", "aten::alias"):
            self.views += 1
        else:
            self.kernels += 1
        return func(*args, **(kwargs or {}))


class Calls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += getattr(func, "__name__", "") not in METADATA
        return func(*args, **(kwargs or {}))


def counts(model, loss_of, batch, bf16: bool) -> dict:
    def loss():
        with autocast("cpu", bf16):
            return loss_of(model, batch)

    ops, calls, modules = Ops(), Calls(), []
    with ops:
        loss().backward()
    with calls:
        loss()
    hook = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, a: modules.append(m))
    loss()
    hook.remove()
    model.zero_grad(set_to_none=True)
    return {"kernel_ops": ops.kernels, "views": ops.views, "torch_calls_forward": calls.n,
            "module_calls_forward": len(modules)}


def timed(ours, our_loss, batch, pairs: int, bf16: bool, others) -> list[dict]:
    def step(model, loss_of, backward):
        def run():
            with autocast("cpu", bf16):
                loss = loss_of(model, batch)
            if backward:
                loss.backward()
                model.zero_grad(set_to_none=True)
        return run

    rows = []
    for backward in (False, True):
        for pair, other, other_loss in others:
            ta, tb = alternate(step(ours, our_loss, backward), step(other, other_loss, backward), pairs)
            ratios = [b / a for a, b in zip(ta, tb)]
            q = statistics.quantiles(ratios, n=4)
            rows.append({"step": "forward and backward" if backward else "forward", "pair": pair,
                         "xformer_ms": round(statistics.median(ta) * 1e3, 3),
                         "other_ms": round(statistics.median(tb) * 1e3, 3),
                         "other_over_xformer": round(statistics.median(ratios), 3),
                         "quartiles": [round(q[0], 3), round(q[2], 3)]})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results/vit_host_ops.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ours, our_loss, ref, ref_loss, batch, _ = PAIRS["vit"](SIZES["vit"][0], "cpu")
    result = {"counts_at_reference_size": {"xformer": counts(ours, our_loss, batch, args.bf16),
                                           "timm": counts(ref, ref_loss, batch, args.bf16)}}
    print(result, flush=True)
    ours, our_loss, ref, ref_loss, batch, _ = PAIRS["vit"](TINY, "cpu")
    others = [("xformer vs timm", ref, ref_loss), ("xformer vs xformer (noise floor)", copy.deepcopy(ours), our_loss)]
    result.update({"tiny_size": TINY, "bf16": args.bf16, "torch": torch.__version__,
                   "rows": timed(ours, our_loss, batch, args.pairs, args.bf16, others)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
