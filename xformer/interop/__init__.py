"""Weights to and from other libraries by renaming parameters, never by running their code (timm ViT here)."""
from .timm_vit import config_from_timm_vit, from_timm_vit, save_timm_safetensors, to_timm_state_dict

__all__ = ["config_from_timm_vit", "from_timm_vit", "to_timm_state_dict", "save_timm_safetensors"]
