"""The package stays readable (DESIGN.md, issue 14): the core in one sitting, no module too long to hold in
mind. Counted as ``wc -l`` does, docstrings and blank lines included."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xformer"


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_core_reads_in_one_sitting():
    per_file = {p.name: lines(p) for p in sorted((PACKAGE / "core").glob("*.py"))}
    assert sum(per_file.values()) < 700, per_file


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := lines(p)) > 400}
    assert not long, long
