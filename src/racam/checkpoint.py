"""Training checkpoints: atomic writes, safe loads, RNG state capture.

A checkpoint is a plain dict of tensors and plain data (loadable with
``torch.load(weights_only=True)``, so a checkpoint file is never executed as code)::

    {"format": "racam-checkpoint/1", "epoch": int, "meta": dict, "model": state_dict,
     "optimizer": state_dict | None, "scheduler": state_dict | None,
     "scaler": state_dict | None, "rng_states": dict | None}

``meta`` says how to rebuild the model (classifier: ``backbone``, ``width``, ``in_channels``,
``num_classes``; segmentation: ``arch``, ``encoder``, ``in_channels``, ``classes``) plus the
training history and config.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from racam.errors import CheckpointError
from racam.io import atomic_write

FORMAT = "racam-checkpoint/1"


def capture_rng_states(generator: torch.Generator | None = None) -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy, ``random`` and an optional generator,
    as tensors and plain data (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "random": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        states["generator"] = generator.get_state()
    return states


def restore_rng_states(states: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng_states`."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    version, internal, gauss = states["random"]
    random.setstate((version, tuple(internal), gauss))
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and "generator" in states:
        generator.set_state(states["generator"])


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through :func:`racam.io.atomic_write`: a reader (or a killed writer) never
    sees a half-written ``path``."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def mark_diverged(path: str | os.PathLike[str], epoch: int) -> None:
    """Record in the checkpoint ``path`` (``last.pt``) that training diverged at ``epoch``
    (``meta["diverged_at"]``), atomically; the weights stay those of the epoch before."""
    state = load_checkpoint(path)
    state["meta"]["diverged_at"] = int(epoch)
    atomic_torch_save(state, path)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module,
                    optimizer: torch.optim.Optimizer | None, scheduler: Any | None, epoch: int,
                    meta: dict[str, Any], rng_states: dict[str, Any] | None = None, *,
                    scaler: Any | None = None) -> Path:
    """Write a checkpoint atomically (see the module docstring for its content)."""
    state = {
        "format": FORMAT,
        "epoch": int(epoch),
        "meta": meta,
        "model": _cpu_state(model),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng_states": rng_states,
    }
    atomic_torch_save(state, path)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file when it is missing, unreadable, or not a
    racam checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p}: no such file")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"checkpoint {p}: refused, it holds Python objects that are not "
                              f"tensors or plain data ({_refusal_reason(exc)}); racam loads "
                              "weights only and never runs code from a file") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {p}: corrupt or not a torch file "
                              f"({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {p}: not a racam checkpoint "
                              f"(expected format {FORMAT!r})")
    for key in ("epoch", "meta", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint {p}: missing entry {key!r}")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refusal_reason(exc: BaseException) -> str:
    """The line of torch's weights-only refusal that names what the file holds, without torch's
    advice to load it with ``weights_only=False`` (never to be followed for an untrusted file)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "weights_only" not in ln and "torch.load" not in ln
              and not ln.startswith(("Weights only load failed", "Check the documentation"))]
    return useful[0].rstrip(".") if useful else "not a weights-only file"


def load_model_state(model: nn.Module, state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``model.load_state_dict(state["model"])``, raising :class:`CheckpointError` on mismatch."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit the model: {exc}") from exc


def load_classifier(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a classifier from a checkpoint's ``meta`` and load its weights.

    Returns ``(model, meta)`` with the model in eval mode on ``map_location``.
    """
    from racam.models.registry import build_classifier

    state = load_checkpoint(path, map_location="cpu")
    meta = state["meta"]
    try:
        model = build_classifier(meta["backbone"], num_classes=int(meta["num_classes"]),
                                 in_channels=int(meta["in_channels"]), width=int(meta["width"]),
                                 batch_norm=bool(meta.get("batch_norm", False)))
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path}: meta lacks {exc} (not a classifier "
                              "checkpoint?)") from exc
    load_model_state(model, state, path)
    return model.to(map_location).eval(), meta
