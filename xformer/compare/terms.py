"""A data error of ``xformer compare`` said in compare's own terms.

The datasets name a fix as ``xformer train``'s recipes take it: an argument of the data (``input_len=96``,
``data.args.test_path``, ``columns=[...]``). Compare sets those arguments itself, from its options or to fixed
values, so :func:`in_compare_terms` rewrites the line, the datasets knowing nothing of compare:

1. an argument compare sets from an option is called by that option (``input_len=96`` -> ``--input-len 96``; a UCR
   file's ``data.args.test_path`` -> the TEST file of ``--classify-data TRAIN TEST``);
2. a fix that compare has no option for is said as compare can take it (a CSV's value columns: keep only those in
   the file), or dropped where the line names another (``or a smaller block_size``: compare's text windows are 64
   characters);
3. any argument of the dataset the line still names is one compare does not take: the line says so, and names the
   way out (the file itself, or ``xformer train``). This step reads the dataset's own argument names
   (``DATASETS.defaults``), not the wording of its messages, so that a message added later is caught too.
"""
from __future__ import annotations

import re

from ..data.registry import DATASETS

OPTIONS = {"input_len": "--input-len", "horizon": "--horizon"}  # the data arguments compare has options for

# (the domain, or None for all; a fix in xformer train's terms; the same in compare's), applied in order
REWRITES = [
    (None, r"set date_column to the column of dates.*$",
     "xformer compare reads the dates (or integer time steps) from a column named date: rename yours to date, or "
     "give a long file with the columns unique_id, ds, y"),
    (None, r"give data\.args\.val_fraction=0 \(no validation split\)",
     "compare chooses each run's checkpoint on a validation split, so give a data set with at least two training "
     "series a class (or train without validation with xformer train ... data.args.val_fraction=0)"),
    ("series", r"choose the value columns with columns=\[\.\.\.\]", "keep only the date and value columns in the file"),
    ("series", r"data\.args\.path\b", "--series-data"),
    ("series", r"pass missing='ffill' or missing='interpolate' to fill them \(in a recipe or on the command line: "
     r"data\.args\.missing=interpolate\)",
     "fill them in the file, or train on it with xformer train ... data.args.missing=interpolate (or ffill), which "
     "fills them"),
    ("text", r"block_size \+ 1 = (\d+)(?: tokens)?", r"\1 characters"),  # the char tokenizer: a token is a character
    ("text", r"\b(\d+) tokens\b", r"\1 characters"),
    ("classify", r"pass data\.args\.missing=ffill to fill them",
     "fill them in the file, or train on it with xformer train ... data.args.missing=ffill, which fills them"),
    ("classify", r"without data\.args\.test_path", "without a TEST file"),
    ("classify", r"as data\.args\.test_path", "as --classify-data TRAIN TEST"),
    ("classify", r"data\.args\.test_path\b", "the TEST file of --classify-data TRAIN TEST"),
    ("classify", r"data\.args\.path\b", "--classify-data TRAIN"),
    ("images", r"^image_folder: (?:data\.args\.root )?", "--image-data "),
    ("images", r" or set data\.args\.root\b", " (xformer compare reads ./data of the folder it runs in)"),
    (None, r" or an? (?:smaller|larger) (?:data\.args\.)?[a-z]+_[a-z_]+(?: / [a-z]+_[a-z_]+)?", ""),  # compare's own
]
TEXT_SPLIT = (" (xformer compare reads the first 80% of the text for training, the next 10% for validation and the "
              "last 10% for test)")


def in_compare_terms(message: str, domain: str, data: str) -> str:
    """``message``, a data error of the ``domain``'s dataset named ``data``, with its fix in compare's options."""
    for name, option in OPTIONS.items():
        message = re.sub(rf"(?:data\.args\.)?\b{name}=([^\s,;)]+)", rf"{option} \1", message)
        message = re.sub(rf"data\.args\.{name}\b" + (rf"|\b{name}\b" if "_" in name else ""), option, message)
    message = message.replace("--input-len / horizon", "--input-len / --horizon")
    for where, pattern, replacement in REWRITES:
        if where in (None, domain):
            message = re.sub(pattern, replacement, message)
    if domain == "text" and re.search(r"\b(part|split)\b", message):
        message += TEXT_SPLIT
    left = [name for name in DATASETS.defaults(data) if re.search(
        rf"\b{name}=|data\.args\.{name}\b" + (rf"|\b{name}\b" if "_" in name else ""), message)]
    left = left or re.findall(r"data\.args\.(\w+)", message)
    if left and "xformer train" not in message:
        message += (f"; xformer compare takes no data.args (here {', '.join(dict.fromkeys(left))}): change the file "
                    "itself, or train on it with xformer train, which does")
    return message


__all__ = ["in_compare_terms"]
