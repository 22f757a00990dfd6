"""The data settings a dataset refuses beside a choice that never reads them, named in one place:

    text_lm, text_mlm, text_classification, text_seq2seq   vocab_size, min_frequency, lowercase   but with wordpiece
    text_mlm                                               document_chars                         with line_by_line
    text_classification, text_seq2seq                      min_words, max_words                   with files
    text_classification                                    text_column, label_column              without files
    csv_series                                             train_ratio, test_ratio                with split ett
    csv_series                                             rows_per_day                           with split ratio
    csv_series                                             scaler                                 with scale false
    series_classification                                  n_per_class                            with path

A new run is refused them (by the datasets themselves); a run recorded with one before that was trained without
it, and is resumed, evaluated and averaged without it (``train/resume.py``: ``run_data_args``, ``as_trained``);
one given on ``xformer evaluate``'s command line is the user's own, and refused.
"""
from __future__ import annotations

from .registry import DATASETS
from .vocab import LEARNING_ARGS

TEXT_DATA = ("text_lm", "text_mlm", "text_classification", "text_seq2seq")


def unread_settings(name: str, args: dict) -> tuple[str, ...]:
    """The keys of ``args`` (a dataset ``name``'s) that the choices ``args`` make leave unread."""
    from ..registry import import_all_submodules

    import_all_submodules(__package__)
    defaults = DATASETS.defaults(name)

    def value(key):
        return args.get(key, defaults.get(key))

    rules = [(name in TEXT_DATA and value("tokenizer") != "wordpiece", tuple(LEARNING_ARGS)),
             (name == "text_mlm" and value("line_by_line"), ("document_chars",)),
             (name in ("text_classification", "text_seq2seq") and value("files"), ("min_words", "max_words")),
             (name == "text_classification" and not value("files"), ("text_column", "label_column")),
             (name == "csv_series" and value("split") == "ett", ("train_ratio", "test_ratio")),
             (name == "csv_series" and value("split") == "ratio", ("rows_per_day",)),
             (name == "csv_series" and not value("scale"), ("scaler",)),
             (name == "series_classification" and value("path"), ("n_per_class",))]
    return tuple(key for applies, keys in rules if applies for key in keys if key in args)


__all__ = ["TEXT_DATA", "unread_settings"]
