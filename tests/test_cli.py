"""The `xformer` command line."""
import os
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "xformer", *args], capture_output=True, text=True)


def test_help_lists_subcommands():
    result = run("--help")
    assert result.returncode == 0 and "demo" in result.stdout


def test_every_subcommand_has_help(capsys):
    """In this process (a subprocess each cost 28 s); the console entry point is test_help_lists_subcommands'."""
    import pytest

    from xformer.cli import build_parser, main

    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        out = capsys.readouterr()
        assert exit_.value.code == 0 and f"xformer {name}" in out.out, (name, out.err)


def test_output_into_a_closed_pipe_stops_quietly(tmp_path):
    """`xformer forecast ... | head -1`: the reader goes away before the output is written (the run it forecasts
    with is trained in this process; the forecast is the console script's, into a real closed pipe)."""
    import numpy as np
    import pandas as pd
    import yaml

    from xformer.cli import main

    t = np.arange(200)
    pd.DataFrame({"date": pd.date_range("2021-01-01", periods=200, freq="h"), "v": np.sin(t / 4)}).to_csv(
        tmp_path / "s.csv", index=False)
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16},
                        "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
                        "head": {"name": "forecast"}},
              "data": {"name": "csv_series", "args": {"path": str(tmp_path / "s.csv"), "input_len": 24, "horizon": 8}},
              "train": {"steps": 2, "batch_size": 16, "eval_every": 2}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    for buffering in ("buffered", "unbuffered"):  # a pipe's stdout is block-buffered unless PYTHONUNBUFFERED is set
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if buffering == "unbuffered":
            env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen([sys.executable, "-m", "xformer", "forecast", str(tmp_path / "run"), "--data",
                                 str(tmp_path / "s.csv"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        proc.stdout.close()  # no reader left
        err = proc.stderr.read()
        assert proc.wait() == 141 and "Traceback" not in err and "BrokenPipe" not in err, (buffering, err)


def test_a_run_folder_that_does_not_exist_is_named_so(tmp_path, capsys):
    from xformer.cli import main

    missing = tmp_path / "no_such_run"
    for command in (["evaluate", missing], ["predict", missing, "x.png"], ["attention", missing, "--index", "0"],
                    ["export", missing, "--format", "timm", "--out", tmp_path / "x"], ["generate", missing],
                    ["forecast", missing, "--data", "x.csv"], ["backtest", missing, "--data", "x.csv", "--windows", "1"]):
        assert main([str(part) for part in command]) == 2
        err = capsys.readouterr().err
        assert f"xformer: error: {missing} does not exist; give " in err and err.count("\n") == 1, (command, err)


def test_a_torchrun_rank_exits_with_the_status_and_the_output_of_main(tmp_path):
    # under torchrun (WORLD_SIZE > 1) the command leaves through os._exit: nothing it printed may be lost
    # and its status must be main()'s (see xformer.cli.console)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "WORLD_SIZE": "2"}  # stdout buffered
    missing = tmp_path / "no_such_run"
    bad = subprocess.run([sys.executable, "-m", "xformer", "evaluate", str(missing)], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and str(missing) in bad.stderr
    demo = subprocess.run([sys.executable, "-m", "xformer", "demo", "--steps", "2"], capture_output=True, text=True,
                          env=env)
    assert demo.returncode == 0 and "reverse digits" in demo.stdout and "copy digits" in demo.stdout
