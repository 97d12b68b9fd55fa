"""Apply a trained run to new images: ``racam predict`` (masks, overlays, CSV, gallery)."""
