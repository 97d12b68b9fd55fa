"""The run report and the predict gallery rendered in headless Chromium: every image loads.

Chromium (Debian package ``chromium``) is installed by ``.ci/run``; without it this test fails
(not skips) under ``RACAM_REQUIRE_DATA=1``, as CI runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from racam.deploy.predict import PredictOptions, predict_folder

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const state = imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
  const pre = document.createElement('pre');
  pre.id = 'racam-image-check';
  pre.textContent = JSON.stringify(state);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium not installed (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("RACAM_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _run(args: list[str]) -> str:
    exe = chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def images_loaded(page: Path) -> list[dict]:
    """``[{src, ok}]`` of every <img> of ``page`` after Chromium loaded it."""
    probe = page.with_name(f".probe-{page.name}")  # same folder: relative links resolve
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    try:
        dom = _run(["--dump-dom", probe.as_uri()])
    finally:
        probe.unlink()
    found = re.search(r"<pre id=\"racam-image-check\">(.*?)</pre>", dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page: Path, png: Path) -> np.ndarray:
    _run([f"--screenshot={png}", "--window-size=1200,1600", page.as_uri()])
    return np.asarray(Image.open(png).convert("L"))


@pytest.mark.data
def test_report_and_gallery_render_with_every_image(trained_run, ksdd_root, tmp_path) -> None:
    imgs = tmp_path / "my images"  # a space in the path: links must be quoted
    (imgs / "sub").mkdir(parents=True)
    Image.open(ksdd_root / "kos13/Part1.jpg").save(imgs / "first part #1.png")
    Image.open(ksdd_root / "kos14/Part2.jpg").convert("RGB").save(imgs / "sub" / "second.jpg")
    out = tmp_path / "pred"
    predict_folder(trained_run, PredictOptions(images=imgs, out=out, device="cpu",
                                               progress=False))
    for page, n in ((trained_run / "run-report.html", 1), (out / "index.html", 2)):
        state = images_loaded(page)
        assert len(state) == n and all(s["ok"] for s in state), state
        shot = screenshot(page, tmp_path / f"{page.stem}.png")
        assert shot.shape == (1600, 1200) and shot.std() > 5  # rendered, not blank


def test_the_check_sees_a_missing_image(tmp_path) -> None:
    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "there.png")
    page = tmp_path / "page.html"
    page.write_text("<html><body><img src='there.png'><img src='missing.png'></body></html>")
    state = images_loaded(page)
    assert [s["ok"] for s in state] == [True, False]
