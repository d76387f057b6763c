"""The explorer in a real browser: Playwright driving the system's headless Chromium.

Playwright's own browser download does not work on these machines, so the Debian package's
binary is launched directly; `make test` installs it. Screenshots go to the test's temporary
folder (and a copy to /tmp/explorer_shots/ for people reviewing a run).
"""

import csv
import io
import os
import re
import shutil
import threading

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium tries to reach Google services, and the closed network
# refuses it noisily; without --no-sandbox it cannot start as root in a container.
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
SHOTS_FOR_REVIEW = "/tmp/explorer_shots"
N_IMAGES = 60

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason="needs the system Chromium at /usr/bin/chromium (Debian packages chromium and "
        "chromium-driver; `make test` installs them)",
    ),
]

# JavaScript run in the page: the pixel position (in the viewport) of every plotted point.
POINT_POSITIONS = """
(selector) => {
  const gd = document.querySelector(selector || '#scatter .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  const points = [];
  gd._fullData.forEach((trace) => {
    if (trace.name === 'selected point' || trace.visible !== true) return;
    for (let i = 0; i < trace.x.length; i++) {
      points.push({index: trace.customdata[i], name: trace.name,
                   x: box.left + xa._offset + xa.l2p(trace.x[i]),
                   y: box.top + ya._offset + ya.l2p(trace.y[i])});
    }
  });
  return {points: points, plot: {left: box.left + xa._offset, top: box.top + ya._offset,
                                 width: xa._length, height: ya._length}};
}
"""


def _make_images(n_images, size=24, seed=0):
    """Three kinds of source (round, elongated, ring) of random size, shape and position."""
    rng = np.random.default_rng(seed)
    grid_y, grid_x = np.mgrid[:size, :size] - (size - 1) / 2
    images = np.empty((n_images, 3, size, size), np.float32)
    kinds = np.arange(n_images) % 3
    for i, kind in enumerate(kinds):
        x, y = grid_x - rng.uniform(-2, 2), grid_y - rng.uniform(-2, 2)
        angle = rng.uniform(0, np.pi)
        u, v = x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)
        if kind == 0:
            profile = np.exp(-(x**2 + y**2) / (2 * rng.uniform(1.5, 4.5) ** 2))
        elif kind == 1:
            major = rng.uniform(3, 7)
            profile = np.exp(-(u**2 / major**2 + v**2 / (rng.uniform(0.2, 0.5) * major) ** 2) / 2)
        else:
            radius = np.sqrt(x**2 + y**2)
            profile = np.exp(-((radius - rng.uniform(4, 9)) ** 2) / (2 * rng.uniform(0.8, 2) ** 2))
        colour = rng.uniform(0.4, 1.0, 3)[:, None, None]
        images[i] = rng.uniform(0.5, 1.5) * colour * profile + rng.normal(0, 0.05, (3, size, size))
    return images, np.array(["round", "elongated", "ring"])[kinds]


@pytest.fixture(scope="module")
def explorer():
    import pandas as pd
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skastro.explorer import Explorer

    images, labels = _make_images(N_IMAGES)
    # A stand-in for a deep embedder: only its transform is called.
    estimator = make_pipeline(
        FunctionTransformer(lambda batch: np.asarray(batch).reshape(len(batch), -1)),
        PCA(n_components=8, random_state=0),
    ).fit(images)
    metadata = pd.DataFrame({"redshift": np.linspace(0.01, 0.3, N_IMAGES), "kind": labels})
    ids = [f"obj{i:03d}" for i in range(N_IMAGES)]
    return Explorer(images, estimator=estimator, labels=labels, metadata=metadata, ids=ids)


def _warm_up_umap():
    from skastro.explorer._compute import project

    project(np.random.default_rng(0).normal(size=(30, 4)), "umap")


@pytest.fixture(scope="module")
def server(explorer, request):
    # UMAP's first call in a process compiles numba code (10-45 s on these machines); when the
    # UMAP test is selected, start that now, beside the page-load test, so it waits less. It
    # runs in the server's process, as the app's own first UMAP would.
    warm_up = None
    if any("umap" in item.name for item in request.session.items):
        warm_up = threading.Thread(target=_warm_up_umap, daemon=True)
        warm_up.start()
    handle = explorer.serve(port=0, block=False)
    yield handle
    handle.shutdown()
    if warm_up is not None:
        warm_up.join()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 860}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    _wait_for_points(page, N_IMAGES)
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def _wait_for_points(page, n_points, timeout=30_000):
    page.wait_for_function(
        """(n) => {
          const gd = document.querySelector('#scatter .js-plotly-plot');
          if (!gd || !gd._fullData || !gd.querySelector('canvas')) return false;
          let count = 0;
          gd._fullData.forEach(t => { if (t.name !== 'selected point') count += t.x.length; });
          return count === n;
        }""",
        arg=n_points,
        timeout=timeout,
    )


def _screenshot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    os.makedirs(SHOTS_FOR_REVIEW, exist_ok=True)
    shutil.copy(path, os.path.join(SHOTS_FOR_REVIEW, f"{name}.png"))
    return path


def _isolated_point(positions, margin=25):
    """The point farthest from its nearest neighbour on screen, away from the plot edges."""
    plot = positions["plot"]
    xy = np.array([[p["x"], p["y"]] for p in positions["points"]])
    dist = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    inside = (
        (xy[:, 0] > plot["left"] + margin)
        & (xy[:, 0] < plot["left"] + plot["width"] - margin)
        & (xy[:, 1] > plot["top"] + margin)
        & (xy[:, 1] < plot["top"] + plot["height"] - margin)
    )
    best = int(np.argmax(np.where(inside, dist.min(axis=1), -1)))
    return positions["points"][best]


def test_page_loads(page, tmp_path):
    from playwright.sync_api import expect

    assert page.title() == "skastro explorer"
    # Dash loads some components (the dropdowns) as separate scripts, which can arrive after
    # the scatter on a busy machine: wait for each control instead of counting at once.
    for selector in ("#embedding", "#projection", "#clustering", "#compute", "#instance-panel"):
        expect(page.locator(selector)).to_have_count(1, timeout=15_000)
    legend = page.locator("#scatter .legend .legendtext").all_text_contents()
    assert sorted(t.strip() for t in legend) == ["elongated", "ring", "round"]
    _screenshot(page, tmp_path, "01_loaded")
    # The toolbar's camera saves a PNG of the scatter (the screenshot of the write-up).
    page.hover("#scatter .js-plotly-plot")
    with page.expect_download(timeout=15_000) as download_info:
        page.click('#scatter .modebar-btn[data-title^="Download plot"]')
    download = download_info.value
    assert download.suggested_filename == "skastro-explorer.png"
    saved = tmp_path / "scatter.png"
    download.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_umap_hdbscan_recomputes(page, tmp_path):
    before = page.evaluate(POINT_POSITIONS)["points"]
    page.get_by_text("UMAP", exact=True).click()
    page.get_by_text("HDBSCAN", exact=True).click()
    page.fill("#min-cluster-size", "5")
    page.press("#min-cluster-size", "Enter")
    # HDBSCAN on the UMAP map, the usual pairing: 60 points are too few for it in 8-D.
    page.get_by_text("projection", exact=True).click()
    page.click("#compute")
    # The button is disabled while the worker thread runs and the status says so.
    page.wait_for_function("() => document.querySelector('#compute').disabled", timeout=5_000)
    _screenshot(page, tmp_path, "02_computing")
    # UMAP's first run compiles numba code: allow for it on a slow machine.
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('Done')",
        timeout=420_000,
    )
    page.wait_for_function(
        """() => {
          const gd = document.querySelector('#scatter .js-plotly-plot');
          return gd && gd.layout.title && gd.layout.title.text.includes('UMAP')
            && gd._fullData.some(t => t.name.startsWith('cluster'));
        }""",
        timeout=15_000,
    )
    after = page.evaluate(POINT_POSITIONS)["points"]
    assert len(after) == N_IMAGES
    assert {p["index"] for p in after} == set(range(N_IMAGES))
    assert any(p["name"].startswith("cluster") for p in after)
    moved = {p["index"]: (p["x"], p["y"]) for p in before}
    assert sum(moved[p["index"]] != (p["x"], p["y"]) for p in after) > N_IMAGES // 2
    assert page.locator("#color-by").inner_text().strip().startswith("cluster")
    assert not page.locator("#compute").is_disabled()
    _screenshot(page, tmp_path, "03_umap_hdbscan")


def test_click_point_fills_instance_panel(page, explorer, tmp_path):
    target = _isolated_point(page.evaluate(POINT_POSITIONS))
    page.mouse.move(target["x"] + 8, target["y"] + 8)
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    image = page.locator("#instance-image")
    image.wait_for(timeout=10_000)
    assert image.get_attribute("data-index") == str(target["index"])
    page.wait_for_function(
        "() => document.querySelector('#instance-image').naturalWidth > 0", timeout=5_000
    )
    panel = page.locator("#instance-panel").inner_text()
    assert explorer.ids[target["index"]] in panel
    assert "kind" in panel and "redshift" in panel
    # The clicked point is ringed by a layout shape (cheap to move, unlike a WebGL trace).
    page.wait_for_function(
        "() => { const gd = document.querySelector('#scatter .js-plotly-plot');"
        " return gd.layout.shapes && gd.layout.shapes.length === 1; }",
        timeout=5_000,
    )
    ring = page.evaluate(
        "() => { const s = document.querySelector('#scatter .js-plotly-plot').layout.shapes[0];"
        " return [s.xanchor, s.yanchor]; }"
    )
    view = explorer.compute()
    np.testing.assert_allclose(ring, view.coords[target["index"], :2], rtol=1e-5)
    from playwright.sync_api import expect

    similar = page.locator("#similar-same button.thumb")
    expect(similar).to_have_count(explorer.n_neighbors, timeout=10_000)
    # The page shows the initial view (PCA, no clustering): plain nearest neighbours.
    expected_same, _ = explorer.similar(target["index"], view=explorer.compute())
    shown = [int(b.get_attribute("data-index")) for b in similar.all()]
    assert shown == expected_same.tolist()
    _screenshot(page, tmp_path, "04_instance_panel")

    # Clicking a similar image moves the panel to it.
    next_index = similar.first.get_attribute("data-index")
    similar.first.click()
    page.wait_for_function(
        "(i) => document.querySelector('#instance-image').dataset.index === i",
        arg=next_index,
        timeout=10_000,
    )
    # The stretch and band choices redraw the image in place.
    src = image.get_attribute("src")
    page.click("#band")
    page.get_by_text("band 1", exact=True).click()
    page.wait_for_function(
        "(s) => document.querySelector('#instance-image').src !== s", arg=src, timeout=10_000
    )
    assert image.get_attribute("data-index") == next_index
    _screenshot(page, tmp_path, "05_moved_to_neighbour")


def test_box_selection_exports_exact_ids(page, explorer, tmp_path):
    positions = page.evaluate(POINT_POSITIONS)
    plot = positions["plot"]
    xy = np.array([[p["x"], p["y"]] for p in positions["points"]])
    # A box over the middle of the plot whose edges pass at least 4 px from every point, so
    # the expected set does not hinge on rounding at the border.
    for shrink in np.linspace(0.2, 0.45, 26):
        x0, x1 = plot["left"] + shrink * plot["width"], plot["left"] + (1 - shrink) * plot["width"]
        y0, y1 = plot["top"] + 0.15 * plot["height"], plot["top"] + 0.85 * plot["height"]
        near_edge = (np.abs(xy[:, 0, None] - [x0, x1]) < 4).any(1) | (
            np.abs(xy[:, 1, None] - [y0, y1]) < 4
        ).any(1)
        inside = (xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
        if not near_edge.any() and inside.sum() >= 3:
            break
    else:
        pytest.fail("found no box with clear edges")
    expected = sorted(explorer.ids[positions["points"][i]["index"]] for i in np.flatnonzero(inside))

    page.click('#scatter .modebar-btn[data-val="select"]')
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "(n) => document.querySelector('#selection-summary').textContent.startsWith(n + ' point')",
        arg=len(expected),
        timeout=10_000,
    )
    _screenshot(page, tmp_path, "06_box_selection")
    with page.expect_download(timeout=10_000) as download_info:
        page.click("#export")
    download = download_info.value
    assert download.suggested_filename == "skastro-selection.csv"
    text = open(download.path(), encoding="utf-8").read()
    (tmp_path / "selection.csv").write_text(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["id"] for row in rows) == expected
    assert set(rows[0]) == {"id", "label"}


def test_saved_html_shows_thumbnails_on_hover(browser, explorer, tmp_path):
    path = explorer.save_html(tmp_path / "explorer.html")
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The file must work offline: refuse every request that is not the file itself.
    requested = []
    page.route(
        re.compile(r"^(https?|wss?)://"),
        lambda route: (requested.append(route.request.url), route.abort()),
    )
    page.goto(f"file://{path}")
    page.wait_for_function(
        "() => { const gd = document.getElementById('skastro-scatter');"
        " return gd && gd._fullData && gd.querySelector('canvas'); }",
        timeout=30_000,
    )
    positions = page.evaluate(POINT_POSITIONS, "#skastro-scatter")
    assert len(positions["points"]) == N_IMAGES
    target = _isolated_point(positions)
    page.mouse.move(target["x"] + 8, target["y"] + 8)
    page.mouse.move(target["x"], target["y"])
    tip = page.locator("#skastro-tip")
    tip.wait_for(state="visible", timeout=10_000)
    assert tip.locator("img").get_attribute("src").startswith("data:image/png;base64,")
    page.wait_for_function(
        "() => document.querySelector('#skastro-tip img').naturalWidth > 0", timeout=5_000
    )
    assert explorer.ids[target["index"]] in tip.inner_text()
    _screenshot(page, tmp_path, "07_saved_html_hover")
    context.close()
    assert requested == [], f"the saved HTML tried to fetch {requested}"
    assert not errors, f"JavaScript errors in the saved HTML: {errors}"


def _open(browser, url, n_points=N_IMAGES):
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    _wait_for_points(page, n_points)
    return context, page, errors


def test_labelling_loop_survives_a_server_restart(browser, explorer, tmp_path):
    """Rank by anomaly, label from the gallery and the instance panel, see the gallery
    re-ranked; stop the server, start a new one on the same labels file: they are back."""
    from playwright.sync_api import expect

    from skastro.explorer import Explorer
    from skastro.explorer._labels import INTERESTING, NOT_INTERESTING, LabelStore

    label_file = tmp_path / "cutouts.labels.csv"
    embedding = explorer.get_embedding()

    def new_explorer():
        return Explorer(
            explorer.images,
            embedding={"latent": embedding},
            labels=explorer.labels,
            ids=explorer.ids,
            label_file=label_file,
        )

    first = new_explorer()
    server = first.serve(port=0, block=False)
    try:
        context, page, errors = _open(browser, server.url)
        page.get_by_text("Anomalies", exact=True).click()
        cards = page.locator("#gallery .gallery-card")
        expect(cards.first).to_be_visible(timeout=30_000)
        top = [int(i) for i in cards.evaluate_all("cs => cs.map(c => c.dataset.index)")]
        assert top == first.ranking(use_labels=False).order[: len(top)].tolist()
        _screenshot(page, tmp_path, "08_anomaly_gallery")

        # the top image is interesting, the second is not: each click saves the file at once
        cards.nth(0).locator("button.mini.yes").click()
        page.wait_for_function(
            "(i) => !document.querySelector(`#gallery .gallery-card[data-index='${i}']`)",
            arg=str(top[0]),
            timeout=15_000,
        )
        assert LabelStore(first.ids, label_file).get(top[0]) == INTERESTING
        page.locator(f"#gallery .gallery-card[data-index='{top[1]}'] button.mini.no").click()
        expect(page.locator("#ranking-summary")).to_contain_text(
            "from 1 interesting and 1 not interesting", timeout=15_000
        )
        # a class name for the image shown in the instance panel
        page.locator(f"#gallery .gallery-card[data-index='{top[2]}'] button.gallery-image").click()
        page.wait_for_function(
            "(i) => document.querySelector('#instance-image')?.dataset.index === i",
            arg=str(top[2]),
            timeout=15_000,
        )
        page.fill("#label-class", "merger")
        page.click("#label-class-apply")
        expect(page.locator("#label-status")).to_contain_text("'merger'", timeout=15_000)
        expect(page.locator("#instance-panel")).to_contain_text("merger", timeout=15_000)
        # the gallery refreshes after the label: a labelled image leaves it
        page.wait_for_function(
            "(i) => !document.querySelector(`#gallery .gallery-card[data-index='${i}']`)",
            arg=str(top[2]),
            timeout=15_000,
        )
        # the gallery now follows the light model; the plot shows how the ranking moved
        ranking = first.ranking()
        assert "logistic regression" in ranking.model
        expect(page.locator("#rank-change")).to_contain_text("moved the ranking", timeout=15_000)
        shown = [int(i) for i in cards.evaluate_all("cs => cs.map(c => c.dataset.index)")]
        unlabelled = [i for i in ranking.order if first.user_labels[i] == ""]
        assert shown == unlabelled[: len(shown)]
        _screenshot(page, tmp_path, "09_gallery_reranked")
        context.close()
        assert not errors, errors
    finally:
        server.shutdown()

    rows = {r.split(",")[0]: r.split(",")[1] for r in label_file.read_text().splitlines()[1:]}
    assert rows == {
        explorer.ids[top[0]]: INTERESTING,
        explorer.ids[top[1]]: NOT_INTERESTING,
        explorer.ids[top[2]]: "merger",
    }

    # a new server on the same file (as after a restart or a crash): the labels are back
    second = new_explorer()
    server = second.serve(port=0, block=False)
    try:
        context, page, errors = _open(browser, server.url)
        page.click("#color-by")
        page.get_by_text("your labels", exact=True).click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#scatter .legend .legendtext')]"
            ".some(t => t.textContent.trim() === 'merger')",
            timeout=15_000,
        )
        legend = page.locator("#scatter .legend .legendtext").all_text_contents()
        assert {t.strip() for t in legend} == {INTERESTING, NOT_INTERESTING, "merger", "unlabelled"}
        page.get_by_text("Anomalies", exact=True).click()
        page.locator("#gallery-options input").nth(1).check()  # show labelled images
        expect(page.locator("#gallery .gallery-card[data-label='interesting']")).to_have_count(
            1, timeout=30_000
        )
        _screenshot(page, tmp_path, "10_labels_after_restart")
        context.close()
        assert not errors, errors
    finally:
        server.shutdown()
