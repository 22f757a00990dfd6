"""Task heads: core output -> predictions and loss."""
from .lm import LMHead, token_cross_entropy

__all__ = ["LMHead", "token_cross_entropy"]
