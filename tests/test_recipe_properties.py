"""Issue 13 as a property: whatever values a recipe holds, `xformer train` trains or refuses in one line.

Hypothesis draws 1-3 overrides of numeric model.core / train / data keys, mixing small valid values,
edge values (0, -1, nan, inf, 1.0 for a dropout) and, for size keys, huge ones (10**9, 10**15), and
applies them to a tiny reverse-digits recipe. Every example must either train (exit 0, metrics.json
written) or be refused (exit 2, one stderr line ``xformer: error: ...``, no traceback); it never raises.
Huge sizes must be refused quickly by the memory estimate, not allocated: each example runs under a
time and address-space limit, so one that tries fails the test instead of swapping the machine.
Derandomized: CI runs the same 40 examples every time.
"""
from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_bad_inputs import assert_refused, run_main

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

NAN, INF = float("nan"), float("inf")

BASE = {  # trains in about a second; train.max_seconds caps a valid example that draws long settings
    "model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
              "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "reverse_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16, "min_len": 2, "max_len": 4}},
    "train": {"steps": 3, "batch_size": 16, "lr": 3e-3, "eval_every": 3, "log_every": 1, "max_seconds": 5},
}


# ---- values ---------------------------------------------------------------------------------------------------
def ints(valid, edges=(0, -1), huge: bool = False):
    """``valid`` values, the ``edges`` and, for a size, 10**9 and 10**15."""
    options = [valid, st.sampled_from(edges)]
    if huge:
        options.append(st.sampled_from([10 ** 9, 10 ** 15]))
    return st.one_of(*options)


def floats(low: float, high: float, edges):
    return st.one_of(st.floats(low, high), st.sampled_from(edges))


PROBABILITY = floats(0.0, 0.5, [1.0, 0.999, -0.1, NAN, INF])
SIZE = st.integers(1, 64)

VALUES = {
    "model.core.d_model": ints(st.sampled_from([8, 16, 32]) | SIZE, huge=True),
    "model.core.n_layers": ints(st.integers(1, 3), huge=True),
    "model.core.n_heads": ints(st.sampled_from([1, 2, 4]) | st.integers(1, 8), huge=True),
    "model.core.n_kv_heads": ints(st.sampled_from([None, 1, 2]), huge=True),
    "model.core.d_ff": ints(SIZE, huge=True),
    "model.core.dropout": PROBABILITY,
    "model.core.attn_dropout": PROBABILITY,
    "model.core.attn_proj_dropout": PROBABILITY,
    "model.core.drop_path": PROBABILITY,
    "model.core.norm_eps": floats(1e-8, 1e-3, [0.0, -1.0, NAN, INF]),
    "train.steps": ints(st.integers(1, 5)),
    "train.lr": floats(1e-5, 1e-2, [0.0, -1.0, NAN, INF, -INF]),
    "train.weight_decay": floats(0.0, 0.1, [-1.0, NAN, INF]),
    "train.min_lr": floats(0.0, 1e-4, [-1.0, NAN, INF]),
    "train.batch_size": ints(st.sampled_from([1, 2, 8, 16, 32, 64]), huge=True),
    "train.grad_accum": ints(st.sampled_from([1, 2, 3, 4])),
    "train.warmup_steps": ints(st.integers(0, 10), edges=(-1,), huge=True),
    "train.eval_every": ints(st.integers(1, 5), huge=True),
    "train.log_every": ints(st.integers(1, 5), huge=True),
    "train.eval_batches": ints(st.sampled_from([None, 1, 2]), huge=True),
    "train.eval_batch_size": ints(st.sampled_from([None, 1, 4, 16, 64]), huge=True),
    "train.keep_last": ints(st.integers(1, 3)),
    "train.clip": floats(0.1, 5.0, [None, 0.0, -1.0, NAN, INF]),
    "train.seed": ints(st.integers(0, 1000), edges=(-1,), huge=True),
    "train.betas": st.one_of(st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.9999)).map(list),
                             st.sampled_from([[0.9], [], [0.9, 1.0], [-0.1, 0.9], [NAN, 0.9], [0.9, 0.999, 0.5]])),
    "data.args.n_train": ints(st.integers(16, 128), huge=True),
    "data.args.n_val": ints(st.integers(1, 32), huge=True),
    "data.args.n_test": ints(st.integers(1, 32), huge=True),
    "data.args.min_len": ints(st.integers(1, 6), huge=True),
    "data.args.max_len": ints(st.integers(1, 8), huge=True),
    "data.args.seed": ints(st.integers(0, 100), edges=(-1,), huge=True),
}


def yaml_value(value) -> str:
    """The override text YAML reads back as ``value`` (.nan, .inf, null, [0.9, 0.999], 1.0e-05)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


@st.composite
def overrides(draw) -> list[str]:
    keys = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3, unique=True))
    return [f"{key}={yaml_value(draw(VALUES[key]))}" for key in keys]


# ---- the property ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_recipe(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "tiny_reverse.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    return path


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: every try is a training run
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(overrides=overrides())
def test_train_trains_or_refuses_in_one_line(overrides, base_recipe, tmp_path_factory, capfd, bounded):
    out = tmp_path_factory.mktemp("recipe_run") / "run"
    capfd.readouterr()
    with bounded(seconds=30, memory_gib=4):
        rc = run_main(["train", str(base_recipe), *overrides, "--out", str(out), "--quiet"])
    err = capfd.readouterr().err
    if rc == 0:
        assert (out / "metrics.json").is_file(), f"exit 0 without metrics.json; stderr:\n{err[-2000:]}"
    else:
        assert_refused(rc, err)


def test_override_text_reads_back_as_the_value():
    for value in (NAN, INF, -INF, None, 1e-05, 3, 10 ** 15, [0.9, 0.999], [], 0.0):
        back = yaml.safe_load(yaml_value(value))
        assert back == value or (back != back and value != value), (value, back)
