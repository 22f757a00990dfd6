"""`xformer compare`: one transformer core in three domains (five with the optional ones), beside the models it
replaced.

For each domain the same core (``d_model``, ``n_layers``, ``n_heads``, ``d_ff``) is put between
that domain's tokenizer and head and trained on the domain's embedded default data, and so
are the domain's classic baselines (``xformer.baselines``), all with the same trainer, budget
and seed:

    text    next-character LM on the bundled Python reference manual (or --text-data FILES):
            GPT-style decoder  vs  feed-forward n-gram LM (Bengio 2003), RNN LM, LSTM LM
    images  scikit-learn's 8x8 digits: ViT encoder  vs  MLP, small CNN
    series  generated hourly series (or --series-data CSV): PatchTST-style encoder
            vs  DLinear, RLinear, LSTM forecaster; last value and seasonal naive (nothing to train)
    seq2seq (not in the default set) reversing digit sequences: encoder-decoder transformer
            vs  LSTM encoder-decoder with Bahdanau attention, both decoded greedily
    classify (not in the default set) generated Synthetic Control Chart series (or --classify-data TRAIN [TEST],
            UCR .tsv, .ts or .npz): PatchTST-style classifier vs  FCN, ResNet (Wang et al. 2017)

Every model gets its own run folder under ``OUT/runs/<domain>/<model>`` (the ``xformer train``
layout); :func:`run_comparison` measures each (parameters, tokens per example, forward FLOPs
per example split into attention and feed-forward for the transformers, training throughput,
wall time, final metric) and :mod:`.report` writes report.md,
report.html, results.json and the plots.

    experiments.py   the models of each domain (``entries``) and the options (``CompareConfig``)
    flops.py         what is measured of each model: parameters, tokens, forward FLOPs
    run.py           ``run_comparison``: train, measure, write the report folder
    terms.py         a data error's fix said in compare's options, not in xformer train's data.args
    report.py        report.md, report.html, results.json and the plots
"""
from .experiments import DEFAULT_DOMAINS, DOMAINS, METRIC, CompareConfig, Entry, entries
from .flops import core_shape, forward_flops, transformer_flops
from .run import run_comparison

__all__ = ["CompareConfig", "DOMAINS", "Entry", "entries", "run_comparison", "transformer_flops", "forward_flops"]
