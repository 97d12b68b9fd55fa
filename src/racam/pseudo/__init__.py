"""racam.pseudo: from heat maps to masks (Otsu) and pseudo-labels."""

from racam.pseudo.otsu import otsu_mask, otsu_threshold

__all__ = ["otsu_mask", "otsu_threshold"]
