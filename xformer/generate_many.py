"""Several prompts for `xformer generate`: ``--prompts-file`` (one prompt per non-empty line, or the "prompt"
column of a .jsonl / .csv / .tsv file, as ``xformer predict`` reads texts), decoded ``--batch-size`` sequences at
a time (left-padded, ``generate_text``), and their outputs: blocks on standard output, or ``--out FILE.jsonl``
rows {"prompt", "sample", "text"} in prompt order. Also ``--stop``'s backslash escapes."""
from __future__ import annotations

import json
import re
from pathlib import Path

SEPARATOR = "=" * 40  # between the outputs of two prompts on standard output
SAMPLE_SEPARATOR = "-" * 40  # between two samples of one prompt (--num-samples)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(text: str) -> str:
    """``--stop '\\n\\n'`` as two line breaks: a shell passes backslash escapes as they are typed (llama.cpp reads
    ``\\n``, ``\\t``, ``\\r`` and ``\\\\`` so too); other backslashes stay."""
    return re.sub(r"\\([ntr\\])", lambda m: _ESCAPES[m.group(1)], text)


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of ``--prompts-file``: the "prompt" of each row of a .jsonl / .csv / .tsv file, else each
    non-empty line (- : standard input); none at all is refused in one line."""
    from .config import ConfigError
    from .predict_text import read_texts

    try:
        return [text for _, text in read_texts([path], text_column="prompt")]
    except ConfigError as e:
        if not str(e).startswith("no text in"):
            raise
        raise ConfigError(f"--prompts-file {path} holds no prompt; give one prompt per line, or a .jsonl file with "
                          'a "prompt" field per row') from None


def generate_all(model, vocab, prompts: list[str], num_samples: int, batch_size: int, **options) -> list[list[str]]:
    """``num_samples`` continuations of each prompt (``generate_text`` with ``options``), ``batch_size`` sequences
    at a time: one list per prompt, in prompt order."""
    from .generation import generate_text

    rows = [p for p in prompts for _ in range(num_samples)]
    texts = []
    for start in range(0, len(rows), batch_size):
        texts += generate_text(model, vocab, rows[start:start + batch_size], **options)
    return [texts[i:i + num_samples] for i in range(0, len(texts), num_samples)]


def printed(prompts: list[str], outputs: list[list[str]], continues: bool) -> str:
    """What standard output shows: each prompt's samples (the prompt before each when the model ``continues`` it,
    a decoder; an encoder-decoder's output alone), samples parted by dashes and prompts by a line of '='."""
    blocks = [f"\n{SAMPLE_SEPARATOR}\n".join((p if continues else "") + t for t in texts)
              for p, texts in zip(prompts, outputs)]
    return f"\n{SEPARATOR}\n".join(blocks)


def jsonl_rows(prompts: list[str], outputs: list[list[str]]) -> str:
    """One JSON object a line, in prompt order: {"prompt", "sample" (0, 1, ... of --num-samples), "text" (the
    new text only)}."""
    return "".join(json.dumps({"prompt": p, "sample": s, "text": t}, ensure_ascii=False) + "\n"
                   for p, texts in zip(prompts, outputs) for s, t in enumerate(texts))


__all__ = ["unescape", "read_prompts", "generate_all", "printed", "jsonl_rows"]
