"""The `xformer` command line."""
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "xformer", *args], capture_output=True, text=True)


def test_help_lists_subcommands():
    result = run("--help")
    assert result.returncode == 0 and "demo" in result.stdout


def test_every_subcommand_has_help():
    from xformer.cli import build_parser

    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices
    for name in names:
        result = run(name, "--help")
        assert result.returncode == 0, (name, result.stderr)


def test_demo_runs_and_learns():
    result = run("demo", "--steps", "300")
    assert result.returncode == 0, result.stderr
    assert "reverse digits" in result.stdout and "copy digits" in result.stdout
