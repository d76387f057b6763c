"""Unit tests of the explorer: computations, thumbnails, callbacks, export, server, CLI.

Everything here runs without a browser; tests/test_explorer_browser.py drives the real page."""

import base64
import csv
import doctest
import io
import json
import re
import time
import urllib.request
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skastro.explorer import Explorer, View, ViewSpec
from skastro.explorer import _callbacks as cb
from skastro.explorer._compute import NeighbourIndex, cluster, compute_view, project
from skastro.explorer._figure import HIGHLIGHT_NAME, build_figure
from skastro.explorer._plotlyjs import bundle_source
from skastro.explorer._thumbnails import (
    STRETCHES,
    ThumbnailRenderer,
    default_rgb_bands,
    render_png,
    scale_image,
)

N_IMAGES = 48


def _blobs(n_images=N_IMAGES, n_bands=1, size=16, seed=0):
    """Images of three kinds (small, wide, off-centre blob) whose flat pixels cluster."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    kinds = np.arange(n_images) % 3
    widths, shifts = np.array([1.5, 4.0, 2.0]), np.array([0.0, 0.0, 4.0])
    images = np.empty((n_images, n_bands, size, size), np.float32)
    for i, kind in enumerate(kinds):
        blob = np.exp(-((x - shifts[kind]) ** 2 + y**2) / (2 * widths[kind] ** 2))
        images[i] = blob + rng.normal(0, 0.02, (n_bands, size, size))
    return images, kinds


class TransformOnly:
    """A stand-in for a fitted deep embedder: only ``transform``, recording its batches."""

    def __init__(self, n_components=4):
        self.n_components = n_components
        self.batches = []

    def transform(self, images):
        images = np.asarray(images)
        self.batches.append(len(images))
        flat = images.reshape(len(images), -1)
        return flat[:, : self.n_components * 8 : 8].astype(np.float64)


@pytest.fixture(scope="module")
def data():
    images, kinds = _blobs(n_bands=3)
    flat = images.reshape(len(images), -1)
    embedding = (flat - flat.mean(0)) @ np.random.default_rng(1).normal(size=(flat.shape[1], 6))
    metadata = pd.DataFrame(
        {"redshift": np.linspace(0, 1, N_IMAGES), "survey": np.where(kinds == 0, "A", "B")}
    )
    return images, embedding.astype(np.float32), kinds, metadata


@pytest.fixture
def explorer(data):
    images, embedding, kinds, metadata = data
    ids = np.array([f"obj{i}" for i in range(N_IMAGES)])
    return Explorer(images, embedding=embedding, labels=kinds, metadata=metadata, ids=ids)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_render_png_decodes_to_requested_size(stretch):
    image = np.random.default_rng(0).normal(size=(1, 20, 10)).astype(">f4")  # FITS byte order
    picture = Image.open(io.BytesIO(render_png(image, stretch=stretch, size=60)))
    assert picture.format == "PNG"
    assert picture.size == (30, 60)  # aspect ratio kept, longer side = size
    assert picture.mode == "L"


def test_render_png_rgb_composite_and_bands():
    image = np.random.default_rng(0).random((5, 16, 16)).astype(np.float32)
    assert default_rgb_bands(5) == (3, 2, 1)  # SDSS u g r i z -> i r g
    assert default_rgb_bands(2) is None
    rgb = Image.open(io.BytesIO(render_png(image, size=32)))
    assert rgb.mode == "RGB" and rgb.size == (32, 32)
    grey = Image.open(io.BytesIO(render_png(image, band=4, size=8)))
    assert grey.mode == "L" and grey.size == (8, 8)
    with pytest.raises(ValueError, match="band"):
        render_png(image, band=5)
    with pytest.raises(ValueError, match="3 bands"):
        render_png(image[:2], band="rgb")
    with pytest.raises(ValueError, match="stretch"):
        render_png(image, stretch="gamma")


def test_scale_image_handles_masked_and_flat_images():
    image = np.ones((1, 8, 8), np.float32)
    image[0, 0, 0] = np.nan
    image[0, 1, 1] = np.inf
    assert np.isfinite(scale_image(image)).all()
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    for stretch in STRETCHES:
        scaled = scale_image(ramp, stretch).ravel()
        assert scaled.min() >= 0 and scaled.max() <= 1
        assert np.all(np.diff(scaled) >= 0), stretch  # monotonic


def test_thumbnail_renderer_only_takes_integer_indices(data):
    renderer = ThumbnailRenderer(data[0])
    png = renderer.png(3, size=24)
    assert renderer.png(np.int64(3), size=24) is png  # LRU cache hit
    assert Image.open(io.BytesIO(png)).size == (24, 24)
    for bad in (-1, N_IMAGES, "3", "../../etc/passwd", 2.0, True, None):
        with pytest.raises(IndexError):
            renderer.png(bad)
    with pytest.raises(ValueError):
        renderer.png(0, size=5000)
    uri = renderer.data_uri(0, band=1, size=16)
    assert uri.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (16, 16)
    assert renderer.band_options() == ["rgb", 0, 1, 2]


@pytest.mark.parametrize(("method", "n_dims"), [("pca", 2), ("pca", 3), ("tsne", 2), ("none", 3)])
def test_project_shapes(data, method, n_dims):
    coords = project(data[1], method, n_dims, perplexity=5)
    assert coords.shape == (N_IMAGES, n_dims)
    assert coords.dtype == np.float32
    assert np.isfinite(coords).all()


def test_project_errors_name_the_problem(data):
    with pytest.raises(ValueError, match="choose a projection"):
        project(data[1][:, :2], "none", 3)
    with pytest.raises(ValueError, match="PCA cannot"):
        project(data[1][:, :2], "pca", 3)
    with pytest.raises(ValueError, match="projection must be"):
        project(data[1], "isomap")


# Spectral clustering warns that well-separated clusters leave its graph disconnected.
@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
def test_cluster_labels(data):
    _, embedding, kinds, _ = data
    assert cluster(embedding, "none") is None
    kmeans = cluster(embedding, "kmeans", n_clusters=3)
    assert kmeans.shape == (N_IMAGES,) and set(kmeans) == {0, 1, 2}
    # The three kinds are well separated: every method recovers them.
    for method in ("kmeans", "spectral"):
        labels = cluster(embedding, method, n_clusters=3)
        assert len(set(zip(labels, kinds))) == 3, method
    hdbscan = cluster(embedding, "hdbscan", min_cluster_size=5)
    assert set(hdbscan) - {-1} and np.all(hdbscan >= -1)
    assert len(set(cluster(embedding[:5], "kmeans", n_clusters=8))) <= 4  # clipped to n - 1


def test_view_spec_validates():
    assert ViewSpec("e").validate().projection == "pca"
    for bad in (
        dict(projection="lle"),
        dict(n_dims=4),
        dict(clustering="dbscan"),
        dict(cluster_space="pixels"),
        dict(n_clusters=1),
        dict(min_cluster_size=1),
        dict(min_dist=2.0),
    ):
        with pytest.raises(ValueError):
            ViewSpec("e", **bad).validate()
    assert (
        "HDBSCAN on the projection"
        in ViewSpec("e", clustering="hdbscan", cluster_space="projection").describe()
    )


def test_compute_view_reports_progress(data):
    steps = []
    view = compute_view(
        ViewSpec("e", clustering="kmeans", n_clusters=3),
        data[1],
        lambda fraction, message: steps.append(fraction),
    )
    assert isinstance(view, View)
    assert view.coords.shape == (N_IMAGES, 2) and view.clusters.shape == (N_IMAGES,)
    assert steps == sorted(steps) and steps[-1] == 1.0


def _brute_force(embedding, index, candidates, k):
    candidates = [c for c in candidates if c != index]
    dist = ((embedding[candidates] - embedding[index]) ** 2).sum(1)
    return [candidates[i] for i in np.argsort(dist, kind="stable")[:k]]


def test_neighbours_within_and_outside_cluster():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(500, 5)).astype(np.float32)
    # Cluster 7 is a few scattered points: far from most, so the tree query alone misses
    # them and the exact fallback has to find them.
    clusters = rng.integers(0, 3, 500)
    clusters[rng.choice(500, 6, replace=False)] = 7
    clusters[:20] = -1
    index = NeighbourIndex(embedding)
    for point in [0, 1, 100, *np.flatnonzero(clusters == 7)[:2]]:
        same, other = index.similar(point, clusters, k=5)
        members = np.flatnonzero(clusters == clusters[point])
        # noise belongs to no cluster: never offered as "nearest from other clusters"
        outsiders = np.flatnonzero((clusters != clusters[point]) & (clusters >= 0))
        assert point not in same and point not in other
        assert np.all(clusters[same] == clusters[point])
        assert np.all(clusters[other] != clusters[point]) and np.all(clusters[other] >= 0)
        assert list(same) == _brute_force(embedding, point, list(members), 5)
        assert list(other) == _brute_force(embedding, point, list(outsiders), 5)
    same, other = index.similar(3, None, k=4)
    assert list(same) == _brute_force(embedding, 3, list(range(500)), 4) and len(other) == 0


def test_explorer_validates_inputs(data):
    images, embedding, kinds, metadata = data
    with pytest.raises(ValueError, match="shape"):
        Explorer(images, embedding=embedding[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        Explorer(images, embedding=np.where(np.eye(N_IMAGES, 6) > 0, np.nan, embedding))
    with pytest.raises(ValueError, match="rows"):
        Explorer(images, metadata=metadata.iloc[:-1])
    with pytest.raises(ValueError, match="labels"):
        Explorer(images, labels=kinds[:-1])
    with pytest.raises(ValueError, match="not square"):
        Explorer(np.zeros((4, 10)))
    with pytest.raises(TypeError, match="transform"):
        Explorer(images, estimator=object())
    flat = Explorer(images[:, 0].reshape(N_IMAGES, -1))
    assert flat.images.shape == (N_IMAGES, 1, 16, 16)
    assert flat.embedding_names == ["pixels"]


def test_explorer_reads_memmaps_without_copying(tmp_path, data):
    path = tmp_path / "images.npy"
    np.save(path, data[0][:, 0])
    images = np.load(path, mmap_mode="r")
    explorer = Explorer(images)
    assert np.shares_memory(explorer.images, images)
    assert explorer.thumbnail(0, size=16)[:4] == b"\x89PNG"


def test_estimator_is_only_transformed_in_batches(data):
    estimator = TransformOnly()
    explorer = Explorer(data[0], estimator=estimator, batch_size=20)
    assert explorer.embedding_names == ["TransformOnly"]
    assert estimator.batches == []  # nothing runs before the embedding is shown
    embedding = explorer.get_embedding()
    assert estimator.batches == [20, 20, 8]
    assert embedding.dtype == np.float32 and embedding.shape == (N_IMAGES, 4)
    explorer.compute(clustering="kmeans", n_clusters=3)
    assert estimator.batches == [20, 20, 8]  # cached


def test_compute_caches_and_picks_projection(data, explorer):
    view = explorer.compute(clustering="kmeans", n_clusters=3)
    assert view.spec.projection == "pca" and explorer.view is view
    assert explorer.compute(clustering="kmeans", n_clusters=3) is view
    two_d = Explorer(data[0], embedding={"umap": data[1][:, :2], "latent": data[1]})
    assert two_d.embedding_names == ["umap", "latent"]
    assert two_d.view.spec.projection == "none"  # a 2-D embedding is shown as it is
    np.testing.assert_array_equal(two_d.view.coords, data[1][:, :2])
    assert two_d.compute("latent").spec.projection == "pca"


def test_similar_and_instance_record(explorer):
    view = explorer.compute(clustering="kmeans", n_clusters=3)
    same, other = explorer.similar(4, k=3)
    assert len(same) == 3 and len(other) == 3
    assert np.all(view.clusters[same] == view.clusters[4])
    assert np.all(view.clusters[other] != view.clusters[4])
    record = dict(explorer.instance_record(4))
    assert record["id"] == "obj4" and record["cluster"] == str(view.clusters[4])
    assert record["survey"] == "B" and record["shape"] == "3x16x16"
    with pytest.raises(IndexError):
        explorer.similar(N_IMAGES)


def _decode(typed):
    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype=np.float32)


def test_figure_has_one_trace_per_category_and_a_ring():
    coords = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    clusters = np.repeat([1, 0, -1], 10)
    figure = build_figure(coords, clusters, color_kind="cluster", selected=5)
    traces = figure["data"]
    assert [trace["name"] for trace in traces] == [
        "cluster 0",
        "cluster 1",
        "noise",
        HIGHLIGHT_NAME,
    ]
    assert all(trace["type"] == "scattergl" for trace in traces)
    indices = np.concatenate([trace["customdata"] for trace in traces[:-1]])
    assert sorted(indices) == list(range(30))
    for trace in traces[:-1]:  # coordinates travel as typed arrays, in customdata's order
        np.testing.assert_array_equal(_decode(trace["x"]), coords[trace["customdata"], 0])
        assert "text" not in trace  # ids are fetched on hover, not sent for every point
    assert traces[-1]["customdata"] == [5]
    assert _decode(traces[-1]["y"]).tolist() == [coords[5, 1]]
    continuous = build_figure(coords, np.linspace(0, 1, 30), color_kind="continuous")
    assert continuous["data"][0]["marker"]["showscale"]
    three_d = build_figure(np.c_[coords, coords[:, 0]])
    assert {trace["type"] for trace in three_d["data"]} == {"scatter3d"}
    # The dictionary is a valid plotly figure.
    import plotly.graph_objects as go

    go.Figure(three_d)
    go.Figure(figure)


def test_color_options_follow_the_view(explorer):
    plain = explorer.compute()
    assert [v for v, _ in explorer.color_options(plain)] == [
        "none",
        "label",
        "user-label",
        "knn",
        "meta:0",
        "meta:1",
    ]
    assert explorer.default_color(plain) == "label"
    clustered = explorer.compute(clustering="kmeans", n_clusters=3)
    options, value = cb.color_dropdown(explorer, clustered.key, "label")
    assert value == "cluster" and {"label": "redshift", "value": "meta:0"} in options
    options, value = cb.color_dropdown(explorer, plain.key, "meta:1")
    assert value == "meta:1"
    figure = cb.figure_for(explorer, plain.key, "meta:0")
    assert figure["data"][0]["marker"]["colorbar"]["title"]["text"] == "redshift"
    figure = cb.figure_for(explorer, plain.key, "meta:1")
    assert [t["name"] for t in figure["data"]] == ["A", "B", HIGHLIGHT_NAME]


def _wait(explorer, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = cb.poll_computation(explorer, job_id)
        if state["done"]:
            return state
        time.sleep(0.02)
    raise AssertionError("the computation did not finish")


def test_spec_from_controls_fills_blanks(explorer):
    spec = cb.spec_from_controls(
        explorer, dict(projection="tsne", n_dims="3", perplexity="", n_clusters=None)
    )
    assert spec.embedding == "embedding" and spec.n_dims == 3
    assert spec.perplexity == 30.0 and spec.n_clusters == 8 and spec.min_samples is None


def test_computation_runs_in_background_and_reports(explorer):
    started = cb.start_computation(
        explorer, dict(projection="pca", clustering="kmeans", n_clusters="3")
    )
    assert started["job_id"] and "KMeans" in started["status"]
    state = _wait(explorer, started["job_id"])
    assert state["fraction"] == 1.0 and state["status"].startswith("Done")
    view = explorer._view_for(state["view_key"])
    assert view.spec.clustering == "kmeans" and len(set(view.clusters)) == 3
    # A failing computation says why instead of hanging the page.
    two_d = Explorer(explorer.images, embedding=np.zeros((N_IMAGES, 2), np.float32) + 1)
    failed = _wait(two_d, cb.start_computation(two_d, dict(projection="pca", n_dims=3))["job_id"])
    assert failed["error"] and failed["status"].startswith("Failed") and not failed["view_key"]
    assert cb.start_computation(explorer, dict(min_dist="5"))["job_id"] is not None
    assert cb.poll_computation(explorer, "no-such-job")["done"]


def test_clicked_index_parses_plotly_events():
    assert cb.clicked_index(None) is None
    assert cb.clicked_index({"points": []}) is None
    assert cb.clicked_index({"points": [{"customdata": 7}]}) == 7
    assert cb.clicked_index({"points": [{"customdata": [9]}]}) == 9
    assert cb.clicked_index({"points": [{"x": 1}]}) is None


def test_selection_csv_holds_exactly_the_selected_ids(explorer):
    view = explorer.compute(clustering="kmeans", n_clusters=3)
    selected = {
        # the ring trace repeats point 5; customdata arrives as ints or one-element lists
        "points": [{"customdata": i} for i in (30, 5, 12)] + [{"customdata": [5]}],
    }
    assert cb.selected_indices(selected) == [5, 12, 30]
    rows = list(csv.DictReader(io.StringIO(cb.selection_csv(explorer, view.key, selected))))
    assert [row["id"] for row in rows] == ["obj5", "obj12", "obj30"]
    assert [int(row["cluster"]) for row in rows] == view.clusters[[5, 12, 30]].tolist()
    assert cb.selection_csv(explorer, view.key, None) is None
    assert cb.selection_summary(selected) == "3 points selected"
    assert "select" in cb.selection_summary({"points": []})


def test_instance_panel_shows_image_record_and_neighbours(explorer):
    view = explorer.compute(clustering="kmeans", n_clusters=3)
    children = cb.instance_panel(explorer, view.key, 4, "log", 2, k="3")
    main = children[0]
    assert main.id == "instance-image" and getattr(main, "data-index") == "4"
    assert Image.open(io.BytesIO(base64.b64decode(main.src.split(",")[1]))).size == (192, 192)
    text = json.dumps(children[1].to_plotly_json(), default=str)
    assert "obj4" in text and "redshift" in text and "survey" in text
    same_grid, other_grid = children[3], children[5]
    same, other = explorer.similar(4, k=3, view=view)
    assert [b.id for b in same_grid.children] == [
        {"type": "neighbour", "index": int(i)} for i in same
    ]
    assert [b.id["index"] for b in other_grid.children] == other.tolist()
    assert children[2].children == f"Most similar in cluster {view.clusters[4]}"
    panel, selection = cb.show_instance(explorer, view.key, 4, "asinh", None, None)
    assert len(panel) == 6
    assert selection == {"index": 4, "point": view.coords[4].tolist()}
    assert cb.selected_index(selection) == 4 and cb.selected_index(None) is None
    ringed = cb.figure_for(explorer, view.key, "cluster", selection)
    assert ringed["data"][-1]["customdata"] == [4]


def test_hover_tooltip_and_parameter_visibility(explorer):
    show, bbox, children = cb.hover_tooltip(
        explorer, {"points": [{"customdata": 2, "bbox": {"x0": 1}}]}, lambda i: f"/t/{i}.png"
    )
    assert show and bbox == {"x0": 1} and children.children[0].src == "/t/2.png"
    assert cb.hover_tooltip(explorer, {"points": [{"customdata": 2}]}, str)[0] is False
    visible = cb.parameter_visibility("umap", "hdbscan")
    assert visible["umap"]["display"] == "block" and visible["tsne"]["display"] == "none"
    assert visible["hdbscan"]["display"] == "block" and visible["n_clusters"]["display"] == "none"
    assert cb.parameter_visibility("pca", "none")["cluster_space"]["display"] == "none"


def test_thumbnail_route_only_serves_indices(explorer):
    client = explorer.make_app().server.test_client()
    response = client.get("/_skastro/thumbnail/3.png?stretch=sqrt&band=1&size=40")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).size == (40, 40)
    assert client.get(f"/_skastro/thumbnail/{N_IMAGES}.png").status_code == 404
    # Anything but a non-negative integer does not reach the renderer at all: Dash answers
    # other paths with its page, never with a file.
    for path in ("-1.png", "..%2F..%2Fetc%2Fpasswd.png", "../../etc/passwd", "1.5.png"):
        response = client.get("/_skastro/thumbnail/" + path)
        assert response.mimetype != "image/png", path
        assert b"root:" not in response.data
    assert client.get("/_skastro/thumbnail/1.png?stretch=../x").status_code == 400
    assert client.get("/_skastro/thumbnail/1.png?band=9").status_code == 400


def test_page_loads_the_trimmed_plotly_bundle_from_this_server(explorer):
    source = bundle_source()
    assert source is not None, "build it with skastro/explorer/_static/build_plotly.sh"
    assert b"scatter3d" in source and b"</script" not in source.lower()  # inlined by save_html
    client = explorer.make_app().server.test_client()
    page = client.get("/").get_data(as_text=True)
    url = re.search(r'script\.src = "([^"]+)"', page).group(1)
    assert url.startswith("/_skastro/plotly-") and url.endswith(".min.js")
    response = client.get(url)
    assert response.status_code == 200 and response.data == source
    assert response.mimetype == "text/javascript"
    # The address holds the file's hash, so the browser may keep it for good.
    assert "immutable" in response.headers["Cache-Control"]


def test_no_callback_runs_when_the_page_loads(explorer):
    # The layout already holds what the callbacks would compute; every round trip on load
    # would delay the first render of a large scatter.
    app = explorer.make_app()
    assert len(app._callback_list) == 12
    assert all(callback["prevent_initial_call"] for callback in app._callback_list)
    spec = explorer.view.spec  # PCA, no clustering: only the clustering choice is shown
    assert (spec.projection, spec.clustering) == ("pca", "none")
    shown = {key: app.layout[key].style["display"] for key in ("tsne-params", "umap-params")}
    assert shown == {"tsne-params": "none", "umap-params": "none"}
    assert app.layout["cluster-space-params"].style == {"display": "none"}


def test_layout_is_serialised_once_and_served_unchanged(explorer, monkeypatch):
    from dash._utils import to_json

    from skastro.explorer import _app

    calls = []
    monkeypatch.setattr(_app, "to_json", lambda layout: calls.append(1) or to_json(layout))
    app = explorer.make_app()
    assert len(calls) == 1  # at build time, not on the first page load
    client = app.server.test_client()
    first, second = client.get("/_dash-layout"), client.get("/_dash-layout")
    assert len(calls) == 1
    assert first.mimetype == "application/json" and first.data == second.data
    assert json.loads(first.data) == json.loads(to_json(app.get_layout()))


def test_serve_defaults_to_localhost_and_serves_everything_locally(explorer):
    import inspect

    assert inspect.signature(Explorer.serve).parameters["host"].default == "127.0.0.1"
    with explorer.serve(port=0, block=False) as server:
        assert server.url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
    assert "skastro explorer" in page
    # Every script comes from this server: the page works with no network.
    assert not [s for s in re.findall(r'<script[^>]+src="([^"]+)"', page) if "//" in s]
    with pytest.warns(UserWarning, match="no authentication"):
        explorer.serve(host="0.0.0.0", port=0, block=False).shutdown()


def test_save_html_is_one_self_contained_file(tmp_path, data):
    images, embedding, kinds, _ = data
    ids = [f"id{i}" for i in range(N_IMAGES - 1)] + ["</script><b>x"]
    explorer = Explorer(images, embedding=embedding, labels=kinds, ids=ids)
    explorer.compute(clustering="kmeans", n_clusters=3)
    path = explorer.save_html(tmp_path / "view.html")
    assert list(tmp_path.iterdir()) == [tmp_path / "view.html"]
    page = open(path, encoding="utf-8").read()
    # No script is fetched: plotly.js is inline (its source merely mentions its CDN).
    assert not re.findall(r"<script[^>]*\bsrc=", page)
    assert len(page) > 1_500_000  # plotly.js itself is embedded
    assert page.index("window.Plotly") < page.index('id="skastro-scatter"')
    thumbnails = re.search(r'id="skastro-thumbnails">(.*?)</script>', page, re.S).group(1)
    thumbnails = json.loads(thumbnails)
    assert sorted(map(int, thumbnails)) == list(range(N_IMAGES))
    assert all(uri.startswith("data:image/png;base64,") for uri in thumbnails.values())
    assert "</script><b>" not in page  # an id cannot end the script block
    assert "plotly_hover" in page and "KMeans" in page
    explorer.save_html(tmp_path / "few.html", max_thumbnails=10)
    few = open(tmp_path / "few.html", encoding="utf-8").read()
    assert (
        len(json.loads(re.search(r'"skastro-thumbnails">(.*?)</script>', few, re.S).group(1))) == 10
    )


def test_save_html_exports_several_views_side_by_side(tmp_path, data):
    images, embedding, _, metadata = data
    explorer = Explorer(
        images,
        embedding={"first": embedding, "second": embedding[:, ::-1].copy()},
        metadata=metadata,
        ids=[f"id{i}" for i in range(N_IMAGES)],
    )
    views = [
        explorer.compute(name, projection="pca", clustering="kmeans", n_clusters=3)
        for name in explorer.embedding_names
    ]
    path = explorer.save_html(tmp_path / "two.html", views=views)
    page = open(path, encoding="utf-8").read()
    assert 'id="skastro-scatter"' in page and 'id="skastro-scatter-1"' in page
    assert "repeat(2, minmax(0, 1fr))" in page
    assert "first · PCA 2-D · KMeans" in page and "second · PCA 2-D · KMeans" in page
    # the hover card says what a point is coloured by: here its cluster
    colour = json.loads(re.search(r'id="skastro-scatter-colour">(.*?)</script>', page).group(1))
    assert colour == {"kind": "cluster", "name": "cluster"}
    # a continuous colouring carries each point's value for the card
    column = list(metadata.columns).index("redshift")
    explorer.save_html(tmp_path / "z.html", views=views[:1], color_by=f"meta:{column}")
    page = open(tmp_path / "z.html", encoding="utf-8").read()
    colour = json.loads(re.search(r'id="skastro-scatter-colour">(.*?)</script>', page).group(1))
    assert colour["name"] == "redshift" and len(colour["values"]) == N_IMAGES


def test_log_colour_scale_for_positive_skewed_columns():
    from skastro.explorer._figure import use_log_scale

    rng = np.random.default_rng(0)
    flux = rng.lognormal(3, 1.5, 500)
    assert use_log_scale(flux) and not use_log_scale(rng.uniform(0, 180, 500))
    assert not use_log_scale(flux - flux.mean())  # not all positive
    figure = build_figure(rng.normal(size=(500, 2)), flux, color_kind="continuous", color_name="f")
    marker = figure["data"][0]["marker"]
    assert marker["colorbar"]["title"]["text"] == "f (log scale)"
    assert "1e+03" in marker["colorbar"]["ticktext"] or "1000" in marker["colorbar"]["ticktext"]
    shown = np.frombuffer(base64.b64decode(marker["color"]["bdata"]), "<f4")
    np.testing.assert_allclose(shown, np.log10(flux), rtol=1e-5)


def test_three_d_camera_keeps_the_cube_in_view():
    figure = build_figure(np.random.default_rng(0).normal(size=(50, 3)))
    scene = figure["layout"]["scene"]
    eye = scene["camera"]["eye"]
    # plotly's default eye (1.25, 1.25, 1.25) crops the turned cube: stand further back
    assert np.hypot(np.hypot(eye["x"], eye["y"]), eye["z"]) > 2.4
    assert not scene["xaxis"]["showticklabels"]


def test_docstring_examples_run():
    from skastro.explorer import _explorer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(_explorer, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
