"""Explorer at scale: 50,000 points with a precomputed embedding, measured in a real browser.

Synthetic data: 50,000 single-band 32x32 images (Gaussian sources of random width, position
and brightness, with noise) and a precomputed 16-D embedding drawn from 8 Gaussian clusters,
labelled by cluster. The server runs in this process; headless Chromium (the Debian package,
software WebGL) loads the page through Playwright. Rows:

* ``server start``: ``Explorer(...)``, the initial PCA view, the nearest-neighbour index and
  the Dash app, before any request (the time between ``skastro explore`` and the URL);
* ``first render``: navigation start to every point drawn in the scatter, in the browser
  (``performance.now()`` when the plot holds all points and its WebGL canvas exists), the
  median of 3 page loads: with a cold browser cache (a fresh browser context each time), and
  with a warm one (later loads in one context, as when the page is opened again);
* ``click to panel``: mouse-down on a point to the instance panel showing that point's image,
  loaded (median and worst of several clicks on different points);
* ``server memory``: resident memory of this process (server and data) after the clicks, and
  its peak;
* ``html export`` (full run only): ``save_html`` of all points with 10,000 hover thumbnails.

Run: ``python benchmarks/bench_explorer.py [--quick]`` (``--quick``: 5,000 points).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, write_section

from skastro.explorer import Explorer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
N_CLICKS = 7
N_RENDERS = 3
MS = ("drawn", "layout", "plotly")  # the timings of a first render, in ms from navigation

# In the page: the time (ms since navigation start) when the scatter holds n points, drawn.
_DRAWN = """(n) => {
  const gd = document.querySelector('#scatter .js-plotly-plot');
  if (!gd || !gd._fullData || !gd.querySelector('.gl-canvas-context')) return false;
  let count = 0;
  gd._fullData.forEach(t => { if (t.name !== 'selected point') count += t.x.length; });
  return count === n ? performance.now() : false;
}"""

# Before the page loads: note when plotly.js has been loaded and parsed (window.Plotly set),
# to tell its fixed cost apart from the cost of drawing the points.
_MARK_PLOTLY_READY = """
(function poll() {
  if (window.Plotly && window.Plotly.newPlot) { window.__plotlyReady = performance.now(); return; }
  requestAnimationFrame(poll);
})();
"""

# In the page: when the layout response (which carries the figure's data) arrived.
_LAYOUT_RECEIVED = """() => {
  const entry = performance.getEntriesByType('resource').find(e => e.name.endsWith('_dash-layout'));
  return entry ? [entry.responseEnd, entry.encodedBodySize] : [NaN, NaN];
}"""

# In the page: the size of the plotly.js it loaded (the explorer's bundle or the full one).
_PLOTLY_BYTES = """() => {
  const entries = performance.getEntriesByType('resource');
  const entry = entries.find(e => /plotly[^/]*[.]js$/.test(e.name));
  return entry ? entry.decodedBodySize : NaN;
}"""

# In the page: remember the time of the next mouse-down and of the first panel update that
# shows a different image, once that image has loaded.
_ARM_CLICK_TIMER = """(previous) => {
  window.__clickStart = undefined; window.__panelDone = undefined;
  document.addEventListener('mousedown', () => { window.__clickStart = performance.now(); },
                            {capture: true, once: true});
  const panel = document.getElementById('instance-panel');
  const observer = new MutationObserver(() => {
    const img = document.getElementById('instance-image');
    if (!img || img.dataset.index === previous) return;
    observer.disconnect();
    const done = () => {
      window.__panelDone = performance.now(); window.__panelIndex = img.dataset.index;
    };
    if (img.complete && img.naturalWidth > 0) done(); else img.addEventListener('load', done);
  });
  observer.observe(panel, {childList: true, subtree: true, attributes: true});
}"""

# In the page: viewport positions of a spread of plotted points to click on.
_CLICK_TARGETS = """(count) => {
  const gd = document.querySelector('#scatter .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  const trace = gd._fullData[0], step = Math.floor(trace.x.length / count);
  const targets = [];
  for (let i = 0; i < count; i++) {
    targets.push([box.left + xa._offset + xa.l2p(trace.x[i * step]),
                  box.top + ya._offset + ya.l2p(trace.y[i * step])]);
  }
  return targets;
}"""


def make_data(n_images, size=32, n_components=16, n_clusters=8, seed=0):
    """Synthetic cutouts and a clustered embedding; generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    images = np.empty((n_images, 1, size, size), np.float32)
    yy, xx = (np.mgrid[:size, :size] - (size - 1) / 2).astype(np.float32)
    for start in range(0, n_images, 5000):
        n = min(5000, n_images - start)
        cx, cy = rng.uniform(-4, 4, (2, n, 1, 1)).astype(np.float32)
        width = rng.uniform(1.0, 6.0, (n, 1, 1)).astype(np.float32)
        flux = rng.uniform(0.2, 2.0, (n, 1, 1)).astype(np.float32)
        blob = flux * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
        images[start : start + n, 0] = blob + rng.normal(0, 0.03, (n, size, size))
    labels = rng.integers(0, n_clusters, n_images)
    centres = rng.normal(0, 4, (n_clusters, n_components))
    embedding = centres[labels] + rng.normal(0, 1, (n_images, n_components))
    return images, embedding.astype(np.float32), labels


def _memory_mib():
    """Resident and peak resident memory of this process, in MiB (Linux /proc)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def _first_render(context, url, n_points):
    """Load the page in a new tab; return it and its timings (ms) and sizes (bytes)."""
    page = context.new_page()
    page.add_init_script(_MARK_PLOTLY_READY)
    page.goto(url, wait_until="commit")
    drawn = page.wait_for_function(_DRAWN, arg=n_points, polling="raf", timeout=120_000)
    layout_ms, layout_bytes = page.evaluate(_LAYOUT_RECEIVED)
    timings = dict(
        drawn=drawn.json_value(),
        layout=layout_ms,
        plotly=page.evaluate("() => window.__plotlyReady"),
        layout_bytes=layout_bytes,
        plotly_bytes=page.evaluate(_PLOTLY_BYTES),
    )
    return page, timings


def run(quick=False):
    """Measure the explorer; return one dict per row (metric, value, unit, goal, points)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    n_points = 5_000 if quick else 50_000
    images, embedding, labels = make_data(n_points)
    rows, all_renders = [], []

    def row(metric, value, unit, goal=""):
        rows.append(dict(metric=metric, value=value, unit=unit, goal=goal, points=n_points))

    with Timer() as start:
        explorer = Explorer(images, embedding=embedding, labels=labels)
        app_server = explorer.serve(port=0, block=False)
    row("server start", start.seconds, "s")

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            viewport = {"width": 1400, "height": 860}
            renders = {"cold": [], "warm": []}
            for _ in range(N_RENDERS):
                context = browser.new_context(viewport=viewport)
                renders["cold"].append(_first_render(context, app_server.url, n_points)[1])
                context.close()
            context = browser.new_context(viewport=viewport)
            page, _ = _first_render(context, app_server.url, n_points)  # fills the cache
            for _ in range(N_RENDERS):
                page.close()
                page, warm = _first_render(context, app_server.url, n_points)
                renders["warm"].append(warm)
            for name, timings in renders.items():
                seconds = {key: statistics.median(t[key] for t in timings) / 1000 for key in MS}
                row(f"first render ({name} cache, median)", seconds["drawn"], "s", "≤ 3 s")
                row("  layout with the figure received", seconds["layout"], "s")
                row("  plotly.js loaded and evaluated", seconds["plotly"], "s")
                all_renders.append(
                    f"{name}: " + ", ".join(f"{t['drawn'] / 1000:.2f}" for t in timings) + " s"
                )
            sizes = renders["cold"][-1]
            row("layout response size", sizes["layout_bytes"] / 2**20, "MiB")
            row("plotly.js size", sizes["plotly_bytes"] / 2**20, "MiB")

            clicks, previous, missed = [], "", 0
            for x, y in page.evaluate(_CLICK_TARGETS, N_CLICKS + 1):
                page.evaluate(_ARM_CLICK_TIMER, previous)
                page.mouse.move(x + 3, y + 3)
                page.mouse.move(x, y)
                page.mouse.click(x, y)
                try:
                    page.wait_for_function("() => window.__panelDone !== undefined", timeout=10_000)
                except PlaywrightTimeoutError:
                    # The click missed every point (plotly picks within a few pixels) or hit
                    # the point already shown: count it, do not time it.
                    missed += 1
                    print(f"click at ({x:.0f}, {y:.0f}) opened no new point", file=sys.stderr)
                    continue
                start_ms, done_ms, previous = page.evaluate(
                    "() => [window.__clickStart, window.__panelDone, window.__panelIndex]"
                )
                clicks.append((done_ms - start_ms) / 1000)
            all_renders.append(
                "clicks (the first, untimed in the rows, warms the server): "
                + ", ".join(f"{c:.3f}" for c in clicks)
                + f" s, {missed} missed"
            )
            clicks = clicks[1:]  # the first click also warms the server's code paths
            row("click to panel (median)", statistics.median(clicks), "s", "≤ 0.3 s")
            row("click to panel (worst)", max(clicks), "s", "≤ 0.3 s")
            browser.close()
    finally:
        app_server.shutdown()

    rss, peak = _memory_mib()
    row("server memory (resident)", rss, "MiB")
    row("server memory (peak)", peak, "MiB")
    row("  of which images", images.nbytes / 2**20, "MiB")

    if not quick:
        with tempfile.TemporaryDirectory() as folder, Timer() as export:
            path = explorer.save_html(os.path.join(folder, "explorer.html"))
            size = os.path.getsize(path) / 2**20
        row("html export time", export.seconds, "s")
        row("html export size", size, "MiB")
    return rows, all_renders


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 points instead of 50,000")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_start = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    rows, all_renders = run(quick=args.quick)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    notes = (
        "Headless Chromium with software WebGL (SwiftShader) on the same machine as the server; "
        "times in the browser are from navigation start (first render) and from mouse-down "
        f"(click). Every first render: {'; '.join(all_renders)}. Load average (1, 5, 15 min) "
        f"at the start: {load_start}; at the end: {load}; on {os.cpu_count()} cores. "
        f"Whole benchmark: {time.perf_counter() - started:.0f} s."
    )
    write_section("explorer", "Explorer: 50,000-point scale", rows, notes)


if __name__ == "__main__":
    main()
