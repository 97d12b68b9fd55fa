"""Shared fixtures.

Tests marked ``data`` read the real KolektorSDD from ``$RACAM_DATA/KolektorSDD`` (default:
``../shared/data`` next to the repository). When it is missing they are skipped with a message
saying so, unless ``RACAM_REQUIRE_DATA=1`` (set by ``.ci/run``), in which case they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import TINY_CFG

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Folder holding ``KolektorSDD/`` (``$RACAM_DATA`` or ``../shared/data``)."""
    return Path(os.environ.get("RACAM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def ksdd_root() -> Path:
    """The real KolektorSDD folder; skip (or fail under RACAM_REQUIRE_DATA=1) if absent."""
    root = data_root() / "KolektorSDD"
    if not (root / "kos01").is_dir():
        msg = (f"real KolektorSDD not found at {root}: set RACAM_DATA to the folder that holds "
               "KolektorSDD/ to run the dataset tests")
        if os.environ.get("RACAM_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True, scope="session")
def _racam_cache(tmp_path_factory):
    """racam's cache folder (the demo's folder view of the sample) in the session's temporary
    folder, unless ``$RACAM_CACHE`` names one: tests leave the user's ``~/.cache`` alone."""
    if os.environ.get("RACAM_CACHE"):
        yield
        return
    os.environ["RACAM_CACHE"] = str(tmp_path_factory.mktemp("racam-cache"))
    yield
    del os.environ["RACAM_CACHE"]


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread: small test tensors run far slower with 2 threads on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished tiny ``racam run`` of the demo config (bundled KolektorSDD sample, a few
    seconds of training): classifier, pseudo-labels, segmentation network and report."""
    from racam.config import load_config
    from racam.engine import Engine

    out = tmp_path_factory.mktemp("trained-run")
    cfg = load_config(TINY_CFG, {"output": str(out), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                               "segmentation.epochs": 1, "segmentation.samples_per_epoch": 8})
    Engine(cfg, progress=False, log=lambda _: None).run()
    return out
