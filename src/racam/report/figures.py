"""Figures: overlays of heat maps and masks on images (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor


def _save(fig: plt.Figure, path: Path) -> Path:
    """Lay out, write to a temporary PNG and rename (no half-written figure), close."""
    fig.tight_layout()  # again: harmless for a figure laid out already
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def mask_outline(ax: plt.Axes, mask: Tensor | np.ndarray, color: str = "lime") -> None:
    """Draw the outline of a boolean mask."""
    m = _np(mask).astype(float)
    if m.any():
        ax.contour(m, levels=[0.5], colors=[color], linewidths=0.8)


def fit_title(title: str, width_inches: float, fontsize: float = 7.0, max_lines: int = 3) -> str:
    """``title`` wrapped to a panel ``width_inches`` wide, so that neighbouring titles never
    overlap: lines break after ``/``, ``_``, ``-`` or a space where possible (else inside a
    word); past ``max_lines`` the last line shows the title's end after an ellipsis."""
    import re

    per_line = max(4, int(width_inches * 72 / (0.62 * fontsize)))  # ~glyph width of the font
    pieces: list[str] = []
    for token in re.findall(r"[^/_\- ]*[/_\- ]?", title):
        pieces += [token[i:i + per_line] for i in range(0, len(token), per_line)]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece.rstrip()) > per_line:
            lines.append("")
        lines[-1] += piece
    lines = [ln.rstrip() for ln in lines if ln.strip()]
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + ["\u2026" + title[-(per_line - 1):]]
    return "\n".join(lines)


def image_grid(rows: Sequence[Sequence[tuple[str, str, Tensor | np.ndarray,
                                              Tensor | np.ndarray | None]]],
               path: Path, *, col_width: float = 1.6, row_height: float = 4.0,
               suptitle: str | None = None) -> Path:
    """Save a grid of panels (see :func:`grid_figure`) to ``path``."""
    return _save(grid_figure(rows, col_width=col_width, row_height=row_height,
                             suptitle=suptitle), path)


def grid_figure(rows: Sequence[Sequence[tuple[str, str, Tensor | np.ndarray,
                                              Tensor | np.ndarray | None]]],
                *, col_width: float = 1.6, row_height: float = 4.0,
                suptitle: str | None = None) -> plt.Figure:
    """A grid of panels, laid out (``tight_layout``).

    ``rows[r][c] = (title, kind, array, outline)`` where ``kind`` is ``"image"`` (gray),
    ``"heat"`` (jet colormap over [0, 1]) or ``"mask"`` (binary); ``outline`` is an optional
    boolean mask drawn as a contour (e.g. the true defect). Titles are wrapped to the panel
    width (:func:`fit_title`).
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(col_width * n_cols, row_height * n_rows),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(row):
                continue
            title, kind, arr, outline = row[c]
            a = _np(arr)
            if a.ndim == 3:
                a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
            if kind == "heat":
                ax.imshow(a, cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
            elif kind == "mask":
                ax.imshow(a.astype(float), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(a, cmap="gray" if a.ndim == 2 else None)
            if outline is not None:
                mask_outline(ax, outline)
            ax.set_title(fit_title(title, col_width * 0.9), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def line_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path, *,
              xlabel: str, ylabel: str, title: str, mark_x: float | None = None) -> Path:
    """Save a line plot of named ``(x, y)`` series; ``mark_x`` draws a vertical dashed line."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=name)
    if mark_x is not None:
        ax.axvline(mark_x, ls="--", c="gray", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
