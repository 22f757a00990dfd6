"""Prepare an ETT file (ETTh1/ETTh2 hourly, ETTm1/ETTm2 15-minute) or any dated CSV for forecasting.

    python data/ett/prepare.py [ETTh1.csv] [--out DIR]
    python data/ett/prepare.py --url https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv

Reads a local CSV (default: ../shared/data/ETTh1.csv beside the repository); downloads only when given
--url. Checks it as training will read it (`read_series`: a `date` column that parses and increases,
numeric values, no missing ones) and copies it unmodified (the ETT licence, CC BY-ND 4.0, asks for
unmodified copies) to OUT/<name>.csv with OUT/meta.json: rows, columns, first and last date, rows per day,
md5, and whether the 12/4/4-month `ett` split fits (20 months of rows). Train on it with

    xformer train tasks/patchtst_etth1_96.yaml data.args.path=data/ett/ETTh1.csv     # the `ett` dataset
    ... data.name=csv_series data.args.path=data/ett/ETTh1.csv                    # 70/10/20 by ratio
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if (ROOT / "xformer").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from xformer.data.series import read_series  # noqa: E402
from xformer.data.download import download, run_script  # noqa: E402
from xformer.errors import UserError  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "ETTh1.csv"
ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", help=f"a CSV with a date column (default: {SHARED})")
    parser.add_argument("--url", help="download the CSV from URL first (only then is the network used)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: this folder)")
    parser.add_argument("--name", help="file name to write, without .csv (default: the input's name)")
    parser.add_argument("--date-column", default="date")
    args = parser.parse_args(argv)
    if args.url:
        name = args.name or Path(args.url.split("?")[0]).stem or "series"
        source = download(args.url, args.out / "download" / f"{name}.csv")
    else:
        source = Path(args.csv) if args.csv else SHARED
        if not source.is_file():
            raise UserError(f"series file {source} does not exist; give a CSV path or --url")
    frame = read_series(source, args.date_column)  # every check training makes, one line on failure
    if len(frame) < 2:
        raise UserError(f"{source} holds {len(frame)} row(s); a series needs many more")
    step = frame.index.to_series().diff().median()
    rows_per_day = round(86400 / step.total_seconds()) if step.total_seconds() > 0 else None
    dest = args.out / f"{args.name or source.stem}.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    if dest.resolve() != source.resolve():
        shutil.copyfile(source, dest)
    meta = {"file": dest.name, "source": str(args.url or source), "rows": len(frame), "columns": list(frame.columns),
            "date_column": args.date_column, "first": str(frame.index[0]), "last": str(frame.index[-1]),
            "rows_per_day": rows_per_day, "md5": hashlib.md5(dest.read_bytes()).hexdigest(),
            "ett_columns": list(frame.columns) == ETT_COLUMNS,
            "ett_split_fits": bool(rows_per_day) and len(frame) >= 20 * 30 * rows_per_day}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    split = "the ett split fits" if meta["ett_split_fits"] else "too short for the ett split: use csv_series"
    print(f"{source}: {len(frame):,} rows x {len(frame.columns)} columns, {rows_per_day} a day ({split}) -> {dest}")
    return meta


if __name__ == "__main__":
    run_script(main)
