"""A command-line override whose value is not valid YAML is one line naming it (exit status 2), as a broken
recipe file is, not a PyYAML traceback."""
from pathlib import Path

import pytest

from xformer.cli import main

TASKS = Path(__file__).resolve().parents[1] / "tasks"


@pytest.mark.parametrize("override", ["train.lr=[1e-3,", "data.args={files: x"])
def test_an_override_that_is_not_yaml_is_one_line(tmp_path, capsys, override):
    assert main(["train", str(TASKS / "vit_digits.yaml"), override, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"override '{override}': the value is not valid YAML" in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
