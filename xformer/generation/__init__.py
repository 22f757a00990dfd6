"""Generation: token-level decoding through the KV cache (:mod:`.decoding`: greedy, sampling, beam
search) and text in / text out (:mod:`.text`: ``generate_text``)."""
from .decoding import generate, greedy, top_k_filter, top_p_filter, warp_logits
from .text import _continuation, generate_text, max_positions

__all__ = ["generate", "greedy", "generate_text", "max_positions", "top_k_filter", "top_p_filter", "warp_logits"]
