"""``index.html`` of ``racam predict``: the overlays sorted by defect probability, with the
numbers, and the files that could not be read."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from racam.deploy.outputs import CSV_NAME, Prediction
from racam.io import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 220px; border: 1px solid #ccc; padding: 6px; }
figure.defect { border-color: #d33; border-width: 2px; }
figure.unlocated { border-style: dashed; }
figure img { width: 100%; height: 260px; object-fit: contain; background: #111; }
figcaption { font-size: 0.8em; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
"""


#: The note on images called defective whose mask is empty (:meth:`Prediction.unlocated`).
UNLOCATED_NOTE = ("called defective with no defect pixel outlined: the classifier finds a defect "
                  "the mask does not show; look at these first (racam predict RUN_DIR --source "
                  "cam outlines the classifier's heat map instead)")


def _card(p: Prediction, threshold: float) -> str:
    decision = p.decision(threshold)
    css = f"{decision} unlocated" if p.unlocated(threshold) else decision
    where = ("no defect pixel outlined" if p.unlocated(threshold) else
             f"{p.defect_pixels} defect px ({p.defect_percent:.3f} %), {len(p.boxes)} region(s)")
    src = quote(p.overlay.replace("\\", "/"))
    return (f"<figure class='{css}'><a href='{src}'><img src='{src}' alt='{escape(p.file)}' "
            f"loading='eager'></a><figcaption><b>{escape(p.file)}</b><br>"
            f"p(defect) {p.probability:.4f}: {decision}<br>{where}</figcaption></figure>")


def write_gallery(path: Path, predictions: list[Prediction], *, threshold: float,
                  title: str) -> Path:
    """Atomically write the gallery page to ``path`` (image links relative to its folder)."""
    ok = sorted((p for p in predictions if not p.error and p.probability is not None),
                key=lambda p: (-float(p.probability or 0.0), p.file))
    bad = [p for p in predictions if p.error]
    n_def = sum(p.decision(threshold) == "defect" for p in ok)
    n_unlocated = sum(p.unlocated(threshold) for p in ok)
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p>{len(ok)} images, {n_def} called defective (p(defect) &ge; {threshold:g}), "
             f"{len(bad)} unreadable. Numbers per image: <a href='{CSV_NAME}'>{CSV_NAME}</a>. "
             "Red: predicted defect pixels; yellow: their bounding boxes.</p>",
             *([f"<p><b>{n_unlocated} image(s) {escape(UNLOCATED_NOTE)}.</b> Their cards "
                "have a dashed border.</p>"]
               if n_unlocated else []),
             "<div class='grid'>", *(_card(p, threshold) for p in ok), "</div>"]
    if bad:
        parts += ["<h2>Files that could not be read</h2><table><tr><th>file</th><th>error</th>"
                  "</tr>", *(f"<tr><td>{escape(p.file)}</td><td>{escape(p.error)}</td></tr>"
                             for p in bad), "</table>"]
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")
    return atomic_write_text(path, page)
