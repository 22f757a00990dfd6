"""The Hugging Face folder a run started from (``init_from: hf:FOLDER``), kept in the run.

A run fine-tuned from a Hugging Face folder reads the folder's tokenizer under xformer's special-token
names (GPT-2's ``<|endoftext|>`` is the run's ``[EOS]``). ``xformer export --format hf`` gives the
folder's own names and settings back (interop/export.py); it reads them from the copy kept here, so the
export does not depend on the source folder still being where it was.
"""
from __future__ import annotations

import shutil
from pathlib import Path

HF_SOURCE = "hf_source"  # RUN_DIR/tokenizer/hf_source
KEPT = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
        "merges.txt", "vocab.txt")  # small files: the model's config and the tokenizer's, never the weights


def keep_hf_source(folder: str | Path, tokenizer_dir: Path) -> None:
    """Copy the configuration and tokenizer files of the Hugging Face ``folder`` into
    ``tokenizer_dir/hf_source``."""
    kept = tokenizer_dir / HF_SOURCE
    kept.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        if (Path(folder) / name).is_file():
            shutil.copy2(Path(folder) / name, kept / name)


def kept_hf_source(run: Path) -> Path | None:
    """The copy ``keep_hf_source`` made in ``run``, if any."""
    kept = run / "tokenizer" / HF_SOURCE
    return kept if (kept / "config.json").is_file() else None
