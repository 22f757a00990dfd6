"""Text baselines: Bengio's n-gram neural LM, Elman RNN and LSTM LMs, an LSTM encoder-decoder with attention.

Each is an ``nn.Module`` with the forward contract of the transformer with a ``causal_lm`` head:
``forward(batch) -> {"logits": (B, T, V), "loss", "loss_weight"}`` (the loss only when the batch has
``labels``; the same :func:`~xformer.heads.lm.token_cross_entropy`, so perplexities compare), so the
trainer trains them and the data's ``evaluate`` (greedy decoding, which reruns a model without
``new_cache`` on the whole sequence at every step) scores them next to the transformer.

Batches: language models read ``input_ids`` (B, T) and optional ``attention_mask`` (B, T), 1 = real
token (padding, left or right, acts as "before the start"); ``lstm_seq2seq`` also reads ``src_ids``
(B, S) and ``src_mask`` (B, S). ``labels`` (B, T) is the next token of every position, -100 where
none is scored. A recipe names one as

    model:
      baseline: {name: lstm_lm, args: {hidden_dim: 256, n_layers: 2}}   # the data fills vocab_size (and pad_id)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..batch import ATTENTION_MASK, INPUT_IDS, LABELS, SRC_IDS, SRC_MASK
from ..core import Dropout
from ..heads.lm import token_cross_entropy
from ..registry import register_baseline


def lm_output(logits: Tensor, batch: dict) -> dict:
    """{"logits"} plus, when the batch has labels, the transformer LM head's "loss" and "loss_weight"."""
    out = {"logits": logits}
    if LABELS in batch:
        out["loss"], out["loss_weight"] = token_cross_entropy(logits, batch[LABELS])
    return out


def run_packed(rnn: nn.RNNBase, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
    """``rnn`` (batch_first) over the real positions of each row of x (B, T, d) only, wherever the padding is.

    The real positions of a row are moved to its front (in order) and packed, so padding never enters
    a state; the outputs go back to their own positions (zeros at padding). Returns (outputs, final state).
    """
    order = torch.argsort((~mask).int(), dim=1, stable=True)  # real positions first
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x.gather(1, order[..., None].expand_as(x)), lengths, batch_first=True,
                                  enforce_sorted=False)
    out, state = rnn(packed)
    out = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
    return torch.zeros_like(out).scatter(1, order[..., None].expand_as(out), out), state


@register_baseline("ngram_lm")
class NGramLM(nn.Module):
    """Bengio et al. 2003, "A Neural Probabilistic Language Model": the next token from the last n-1 tokens.

        x_t = [C(w_{t-n+2}); ...; C(w_{t-1}); C(w_t)]     (n-1 = ``context`` embeddings, concatenated)
        y_t = b + W x_t + U tanh(d + H x_t)                (W: the optional direct connections)
        p(w_{t+1} | w_{t-n+2..t}) = softmax(y_t)

    Positions before the start of the sequence (and padding) read a learned padding embedding C(<pad>).
    """

    architecture = "decoder"  # how generate_text drives it (no KV cache: the whole sequence each step)

    def __init__(self, vocab_size: int, context: int = 4, embed_dim: int = 64, hidden_dim: int = 256,
                 dropout: float = 0.0, direct: bool = True):
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be >= 1, got {context}")
        self.vocab_size, self.context = vocab_size, context
        self.embed = nn.Embedding(vocab_size + 1, embed_dim)  # row vocab_size: the padding embedding
        self.hidden = nn.Linear(context * embed_dim, hidden_dim)  # d + H x
        self.out = nn.Linear(hidden_dim, vocab_size)  # b + U h
        self.direct = nn.Linear(context * embed_dim, vocab_size, bias=False) if direct else None  # W x
        self.drop = Dropout(dropout)

    def forward(self, batch: dict) -> dict:
        ids, mask = batch[INPUT_IDS], batch.get(ATTENTION_MASK)
        if mask is not None:  # padding reads as "before the start", so a padded row scores as it would alone
            ids = ids.masked_fill(~mask.bool(), self.vocab_size)
        windows = F.pad(ids, (self.context - 1, 0), value=self.vocab_size).unfold(1, self.context, 1)  # (B, T, n-1)
        x = self.drop(self.embed(windows).flatten(2))
        y = self.out(self.drop(torch.tanh(self.hidden(x))))
        if self.direct is not None:
            y = y + self.direct(x)
        return lm_output(y, batch)


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers -> dropout -> linear (Zaremba et al. 2014's LM, dropout on non-recurrent
    connections only):

        e_t = C(w_t),   h_t^l = f(h_{t-1}^l, h_t^{l-1}) with h_t^0 = dropout(e_t),   y_t = b + V dropout(h_t^L)

    ``tie_weights``: V = C (Press & Wolf 2017; needs embed_dim == hidden_dim). The cell f is the
    subclass's ``rnn`` (``nn.RNN``: Elman's h_t = tanh(W x_t + U h_{t-1} + b); ``nn.LSTM``).
    """

    architecture = "decoder"  # how generate_text drives it (no KV cache: the whole sequence each step)

    rnn: type[nn.RNNBase]

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 128, n_layers: int = 1,
                 dropout: float = 0.0, tie_weights: bool = False):
        super().__init__()
        if tie_weights and embed_dim != hidden_dim:
            raise ValueError(f"tie_weights needs embed_dim == hidden_dim, got {embed_dim} and {hidden_dim}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.layers = self.rnn(embed_dim, hidden_dim, n_layers, batch_first=True,
                               dropout=dropout if n_layers > 1 else 0.0)  # between layers
        self.drop = Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)
        # the small uniform init of the PyTorch word-language-model example (N(0, 1) embeddings train slowly)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)
        if tie_weights:
            self.out.weight = self.embed.weight
        else:
            nn.init.uniform_(self.out.weight, -0.1, 0.1)

    def forward(self, batch: dict) -> dict:
        ids, mask = batch[INPUT_IDS], batch.get(ATTENTION_MASK)
        x = self.drop(self.embed(ids))
        if mask is None or bool(mask.all()):
            h = self.layers(x)[0]
        else:  # left padding would otherwise run through the state before the real tokens
            h = run_packed(self.layers, x, mask.bool())[0]
        return lm_output(self.out(self.drop(h)), batch)


@register_baseline("rnn_lm")
class RNNLM(RecurrentLM):
    rnn = nn.RNN


@register_baseline("lstm_lm")
class LSTMLM(RecurrentLM):
    rnn = nn.LSTM


@register_baseline("lstm_seq2seq")
class LSTMSeq2Seq(nn.Module):
    """Bahdanau et al. 2015: a bidirectional LSTM encoder, an LSTM decoder with additive attention.

        h_j = [->h_j; <-h_j]                             encoder over the real source tokens only
        s_0 = tanh(W_0 [->h_S; <-h_1])                    both directions' final states
        e_tj = v^T tanh(W s_{t-1} + U h_j),   alpha_t = softmax_j(e_t) over real source positions only
        c_t = sum_j alpha_tj h_j
        s_t = LSTM([E y_{t-1}; c_t], s_{t-1})
        logits_t = W_o [s_t; c_t] + b_o

    One embedding E serves source and target (the data's vocabulary is shared). The source mask is
    ``src_mask`` (1 = real); without it, ``src_ids != pad_id`` when ``pad_id`` is given, else all
    real. The output holds "attention" (B, T, S): alpha, 0 on padding. No ``new_cache``: greedy
    decoding reruns the decoder over the whole target prefix at every step.
    """

    architecture = "encoder-decoder"  # how generate_text drives it (no KV cache: the whole sequence each step)

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, dropout: float = 0.0,
                 pad_id: int | None = None):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.encoder = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(2 * hidden_dim, hidden_dim)  # W_0
        self.query = nn.Linear(hidden_dim, hidden_dim)  # W (its bias is the attention's)
        self.key = nn.Linear(2 * hidden_dim, hidden_dim, bias=False)  # U
        self.score = nn.Linear(hidden_dim, 1, bias=False)  # v
        self.decoder = nn.LSTMCell(embed_dim + 2 * hidden_dim, hidden_dim)
        self.out = nn.Linear(3 * hidden_dim, vocab_size)  # W_o, b_o
        self.drop = Dropout(dropout)

    def source_mask(self, batch: dict) -> Tensor:
        src = batch[SRC_IDS]
        if batch.get(SRC_MASK) is not None:
            return batch[SRC_MASK].bool()
        return src != self.pad_id if self.pad_id is not None else torch.ones_like(src, dtype=torch.bool)

    def forward(self, batch: dict) -> dict:
        mask = self.source_mask(batch)
        h, (h_n, _) = run_packed(self.encoder, self.drop(self.embed(batch[SRC_IDS])), mask)  # (B, S, 2H)
        keys = self.key(h)  # U h_j: once per source, not once per step
        s = torch.tanh(self.init_state(torch.cat([h_n[0], h_n[1]], dim=-1)))
        cell = torch.zeros_like(s)
        y = self.drop(self.embed(batch[INPUT_IDS]))
        states, contexts, weights = [], [], []
        for t in range(y.shape[1]):  # c_t needs s_{t-1}: the decoder cannot run as one nn.LSTM call
            e = self.score(torch.tanh(self.query(s)[:, None] + keys)).squeeze(-1)
            alpha = e.masked_fill(~mask, float("-inf")).softmax(-1)
            c = torch.bmm(alpha[:, None], h).squeeze(1)
            s, cell = self.decoder(torch.cat([y[:, t], c], dim=-1), (s, cell))
            states.append(s), contexts.append(c), weights.append(alpha)
        features = torch.cat([torch.stack(states, 1), torch.stack(contexts, 1)], dim=-1)
        out = lm_output(self.out(self.drop(features)), batch)
        out["attention"] = torch.stack(weights, 1)
        return out


__all__ = ["NGramLM", "RecurrentLM", "RNNLM", "LSTMLM", "LSTMSeq2Seq", "lm_output", "run_packed"]
