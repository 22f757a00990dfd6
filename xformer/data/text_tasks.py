"""Text datasets for BERT pre-training, fine-tuning and encoder-decoder training over real text.

    text_mlm             masked LM (+ next-sentence prediction)     bert_text tokenizer, masked_lm(_nsp) head
    text_classification  one label per text                          bert_text tokenizer, classification head
    text_seq2seq         source text -> target text                  seq2seq_text tokenizer, causal_lm head

Each lives in its own module (text_mlm.py, text_classification.py, text_seq2seq.py; what they share
in text_common.py); this module re-exports their names so that ``from xformer.data.text_tasks import ...``
keeps working (with the helpers the tests use: ``acceptability``, ``_generator``, ...).
"""
from .text import paragraphs
from .text_classification import (acceptability, label_names, macro_f1, read_labelled, shuffle_words,
                                  text_classification)
from .text_common import (Items, build_vocab, pad_collate, prose_sentences, sentences, split_indices,
                          seeded_generator as _generator)
from .text_mlm import documents, fix_masks, mlm_items, pack_segments, text_mlm
from .text_seq2seq import read_pairs, reversal_pairs, text_seq2seq

__all__ = ["text_mlm", "text_classification", "text_seq2seq", "paragraphs", "sentences", "prose_sentences",
           "split_indices", "pad_collate", "documents", "pack_segments", "read_labelled", "label_names",
           "macro_f1", "read_pairs", "reversal_pairs"]
