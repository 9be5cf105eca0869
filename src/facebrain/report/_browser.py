"""Open a report in headless Chromium: count images that did not load and console errors.

Used by the ``browser`` tests and available to users (``check_in_browser``).
A copy of the page gets a small script at the top of ``<head>`` that records
``window.onerror``, failed resource loads and ``console.error`` calls, and,
once the page has loaded, writes what it found (and every image's
``naturalWidth``) into a ``<pre id="fb-check">`` element that Chromium's
``--dump-dom`` prints. A second Chromium run saves a screenshot.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "check_in_browser", "find_chromium"]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--mute-audio")

_PROBE = """<script>
window.__fb = {errors: []};
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && (t.src || t.href)) {
    window.__fb.errors.push('resource failed: ' + (t.tagName || '') + ' ' + (t.alt || t.src || t.href).slice(0, 80));
  } else {
    window.__fb.errors.push('error: ' + e.message);
  }
}, true);
window.addEventListener('unhandledrejection', function (e) { window.__fb.errors.push('rejection: ' + e.reason); });
(function () {
  var orig = console.error;
  console.error = function () {
    window.__fb.errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
})();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {n_images: imgs.length, errors: window.__fb.errors,
    images: imgs.map(function (i) { return {alt: i.alt, width: i.naturalWidth, height: i.naturalHeight, complete: i.complete}; })};
  var pre = document.createElement('pre');
  pre.id = 'fb-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM``, then the usual names), or None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def check_in_browser(report: str | os.PathLike, *, screenshot: str | os.PathLike | None = None,
                     chromium: str | None = None, timeout: float = 120.0,
                     window: tuple[int, int] = (1280, 2400)) -> dict:
    """Load ``report`` (file://) in headless Chromium and report what went wrong.

    Returns
    -------
    dict
        ``n_images``, ``images`` (alt, naturalWidth, naturalHeight, complete),
        ``errors`` (page errors, failed loads, console.error calls),
        ``console`` (error-level console lines from Chromium's log) and
        ``broken`` (alt text of images with ``naturalWidth == 0``).
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium not found; install it (apt-get install chromium) "
                                "or set $CHROMIUM to its path.")
    report = Path(report).resolve()
    text = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="fb-chromium-") as tmp:
        tmp = Path(tmp)
        probe = tmp / report.name
        probe.write_text(re.sub(r"<head>", "<head>" + _PROBE, text, count=1), encoding="utf-8")
        profile = tmp / "profile"
        base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}", "--enable-logging=stderr", "--v=0"]
        proc = subprocess.run(
            [*base, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)
        m = re.search(r'<pre id="fb-check">(.*?)</pre>', proc.stdout, re.DOTALL)
        if m is None:
            raise RuntimeError(
                f"Chromium did not run the page's load handler (exit {proc.returncode}); "
                f"stderr tail: {proc.stderr[-2000:]}")
        result = json.loads(html.unescape(m.group(1)))
        result["console"] = [ln for ln in proc.stderr.splitlines()
                             if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*base, f"--screenshot={shot}", report.as_uri()],
                           capture_output=True, text=True, timeout=timeout, cwd=tmp, check=False)
            result["screenshot"] = str(shot) if shot.is_file() else None
    result["broken"] = [i["alt"] for i in result["images"] if not i["width"]]
    return result
