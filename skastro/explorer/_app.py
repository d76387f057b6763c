"""The Dash app: layout of the three columns and the callbacks that wire them.

Dash (Flask + React + plotly.js) is used because it is the maintained way to put a plotly
WebGL scatter behind Python callbacks: zoom, pan, 3-D rotation, legend isolation, box and
lasso selection and PNG export come with plotly.js, its JavaScript bundles are served from
the installed package (no network), and every callback is an ordinary Python function.

The page is built for a fast first render with 50,000 points: the figure comes with the
layout (no callback round trip), plotly.js is a trimmed bundle (see :mod:`._plotlyjs`) that
starts loading with the page, and no callback runs on load.
"""

import functools
import hashlib

import flask
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash._utils import to_json
from dash.exceptions import PreventUpdate

from skastro.explorer import _anomaly_view as av
from skastro.explorer import _callbacks as cb
from skastro.explorer._compute import CLUSTER_SPACES, CLUSTERINGS, PROJECTIONS
from skastro.explorer._plotlyjs import bundle_source
from skastro.explorer._thumbnails import STRETCHES

THUMBNAIL_ROUTE = "/_skastro/thumbnail/"
PLOTLY_ROUTE = "/_skastro/plotly-"
POLL_INTERVAL_MS = 250

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px;
       color: #222; background: #f4f5f7; }
.explorer { display: grid; grid-template-columns: 270px minmax(0, 1fr) 380px; height: 100vh; }
/* each column scrolls on its own: the page itself never does */
html, body { height: 100%; overflow: hidden; }
.column { overflow-y: auto; padding: 12px; }
.left { background: #fff; border-right: 1px solid #ddd; }
.right { background: #fff; border-left: 1px solid #ddd; }
.centre { display: flex; flex-direction: column; padding: 8px; min-width: 0; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #666;
     margin: 16px 0 6px; }
h4 { font-size: 13px; margin: 12px 0 6px; }
label.field { display: block; margin: 6px 0 2px; color: #444; }
.field-input { width: 100%; padding: 4px 6px; border: 1px solid #ccc; border-radius: 4px; }
.radio label { margin-right: 10px; white-space: nowrap; }
.hint { color: #777; font-size: 12px; margin: 4px 0; }
button.primary { margin-top: 14px; width: 100%; padding: 8px; font-size: 15px; border: 0;
                 border-radius: 4px; background: #1f6feb; color: #fff; cursor: pointer; }
button.primary:disabled { background: #8fb3ee; cursor: progress; }
button.secondary { padding: 5px 10px; border: 1px solid #1f6feb; border-radius: 4px;
                   background: #fff; color: #1f6feb; cursor: pointer; }
.progress { height: 8px; background: #e3e6ea; border-radius: 4px; margin-top: 10px;
            overflow: hidden; }
.progress-bar { height: 100%; background: #1f6feb; transition: width .2s; }
.status { margin-top: 6px; font-size: 12px; color: #444; min-height: 2.5em; }
.toolbar { display: flex; align-items: center; gap: 10px; padding: 4px 4px 8px; flex-wrap: wrap; }
.toolbar .color-by { width: 220px; }
.graph { flex: 1; min-height: 0; background: #fff; border: 1px solid #ddd; border-radius: 4px; }
.instance-controls { display: grid; grid-template-columns: 1fr 1.4fr 76px; gap: 0 6px;
                     align-items: end; }
.instance-image { display: block; margin: 10px auto; width: 192px; height: 192px;
                  object-fit: contain; image-rendering: pixelated; background: #000; }
table.record { border-collapse: collapse; width: 100%; font-size: 12px; }
table.record th { text-align: left; color: #666; font-weight: normal; padding: 2px 6px 2px 0;
                  vertical-align: top; width: 40%; }
table.record td { padding: 2px 0; word-break: break-all; }
.thumb-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(76px, 1fr));
              gap: 6px; }
button.thumb { padding: 2px; border: 1px solid #ddd; border-radius: 4px; background: #fff;
               cursor: pointer; }
button.thumb:hover { border-color: #1f6feb; }
button.thumb img { width: 72px; height: 72px; object-fit: contain; image-rendering: pixelated;
                   background: #000; display: block; margin: auto; }
.thumb-caption { font-size: 10px; color: #444; overflow: hidden; text-overflow: ellipsis;
                 white-space: nowrap; max-width: 100px; }
.instance-controls label.field { margin: 0 0 2px; font-size: 12px; }
.centre-view label { margin-right: 4px; padding: 3px 10px; border: 1px solid #1f6feb;
                     border-radius: 4px; cursor: pointer; color: #1f6feb; }
.centre-view input { display: none; }
.centre-view label:has(input:checked) { background: #1f6feb; color: #fff !important; }
.panel { flex: 1; min-height: 0; display: flex; flex-direction: column; }
.anomalies { overflow-y: auto; background: #fff; border: 1px solid #ddd; border-radius: 4px;
             padding: 8px 10px; }
.anomaly-top { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.2fr); gap: 10px; }
.anomaly-controls { display: flex; gap: 4px 14px; align-items: flex-end; flex-wrap: wrap; }
.anomaly-controls .rank-by { width: 240px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr));
           gap: 8px; margin-top: 8px; }
.gallery-card { border: 1px solid #ddd; border-radius: 4px; padding: 3px; background: #fafafa; }
button.gallery-image { padding: 0; border: 0; background: none; cursor: pointer; width: 100%; }
button.gallery-image img { width: 100%; aspect-ratio: 1; object-fit: contain; display: block;
                           image-rendering: pixelated; background: #000; }
.gallery-caption { display: flex; justify-content: space-between; font-size: 11px; gap: 4px; }
.gallery-caption .rank { font-weight: 600; white-space: nowrap; }
.gallery-id { color: #555; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { font-size: 10px; color: #fff; border-radius: 3px; padding: 0 4px; margin: 2px 0;
         text-align: center; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.gallery-buttons { display: flex; gap: 3px; }
button.mini { flex: 1; font-size: 10px; padding: 2px 0; border-radius: 3px; cursor: pointer;
              background: #fff; }
button.mini.yes { border: 1px solid #2ca02c; color: #2ca02c; }
button.mini.no { border: 1px solid #d62728; color: #d62728; }
.label-box { border: 1px solid #ddd; border-radius: 4px; padding: 6px 8px; margin: 8px 0;
             background: #fafafa; }
.label-buttons { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 6px; }
.label-buttons button { padding: 4px 8px; border-radius: 4px; cursor: pointer; background: #fff;
                        border: 1px solid #888; }
.label-buttons .yes { border-color: #2ca02c; color: #2ca02c; }
.label-buttons .no { border-color: #d62728; color: #d62728; }
.label-buttons input { width: 110px; padding: 3px 5px; border: 1px solid #ccc;
                       border-radius: 4px; }
/* the hover card never takes the pointer, and hides while a box or lasso is drawn */
.dash-tooltip, .dcc-tooltip-bounding-box { pointer-events: none; }
body.dragging .dcc-tooltip-bounding-box, body.dragging .dash-tooltip { display: none !important; }
"""

_INDEX = (
    """<!DOCTYPE html>
<html>
<head>
{%metas%}
<title>{%title%}</title>
{%favicon%}
{%css%}
<style>"""
    + _CSS
    + """</style>
</head>
<body>
{%app_entry%}
<footer>
{%config%}
{%scripts%}
{%renderer%}
<script>{plotly_loader}</script>
<script>{drag_watch}</script>
</footer>
</body>
</html>
"""
)


# plotly.js starts loading as soon as Dash's renderer has started (and asked for the layout),
# so it is evaluated while the server sends the layout, instead of after the graph component
# mounts. Until it has run, window.Plotly is a thenable: dcc.Graph, which loads its own
# plotly.js only when window.Plotly is unset, waits on it through Promise.resolve instead.
_PLOTLY_LOADER = """
(function () {
  var waiting = [], failed = null;
  window.Plotly = {then: function (resolve, reject) {
    if (failed) { reject(failed); } else { waiting.push([resolve, reject]); }
  }};
  var script = document.createElement('script');
  script.src = "PLOTLY_URL";
  script.onload = function () { waiting.forEach(function (w) { w[0](window.Plotly); }); };
  script.onerror = function (error) {
    failed = error; waiting.forEach(function (w) { w[1](error); });
  };
  document.head.appendChild(script);
})();
"""

# While a box or lasso (or a zoom box) is drawn on the scatter, the hover card is hidden (CSS
# on body.dragging), so that it never covers the area being selected.
_DRAG_WATCH = """
document.addEventListener('mousedown', function (e) {
  if (e.target.closest && e.target.closest('#scatter .draglayer')) {
    document.body.classList.add('dragging');
  }
}, true);
document.addEventListener('mouseup', function () {
  document.body.classList.remove('dragging');
}, true);
"""

_RING_SCRIPT = """
function (selection) {
    if (!selection || !selection.point) { return window.dash_clientside.no_update; }
    // Two frames later: the instance panel is on screen before the scatter is redrawn.
    requestAnimationFrame(function () { setTimeout(function () {
        var gd = document.querySelector('#scatter .js-plotly-plot');
        if (!gd || !gd.data || !window.Plotly || !window.Plotly.restyle) { return; }
        var p = selection.point, last = gd.data.length - 1;
        if (p.length === 2) {
            // In 2-D the ring is a layout shape: plotly redraws only its shapes layer, while
            // moving a WebGL trace recomputes and redraws all 50,000 points (0.3-0.5 s with
            // software WebGL), which delayed the next click's panel. The figure's own ring
            // trace (filled when the server draws a view with a selected point) is emptied
            // so that only one ring shows; its customdata is a plain list, unlike the
            // base64 coordinates.
            if (gd.data[last].customdata && gd.data[last].customdata.length) {
                window.Plotly.restyle(gd, {x: [[]], y: [[]], customdata: [[]]}, [last]);
            }
            window.Plotly.relayout(gd, {shapes: [{
                type: 'circle', xref: 'x', yref: 'y', xsizemode: 'pixel', ysizemode: 'pixel',
                xanchor: p[0], yanchor: p[1], x0: -9, x1: 9, y0: -9, y1: 9,
                line: {color: '#111', width: 2}}]});
        } else {
            window.Plotly.restyle(
                gd, {x: [[p[0]]], y: [[p[1]]], z: [[p[2]]], customdata: [[selection.index]]},
                [last]);
        }
    }, 0); });
    return selection.index;
}
"""


def _field(label, component, group_id=None, style=None):
    children = [html.Label(label, className="field"), component]
    if group_id is None:
        return html.Div(children)
    return html.Div(children, id=group_id, style=style)


def _radio(component_id, options, value):
    return dcc.RadioItems(
        id=component_id,
        options=[{"label": label, "value": value} for value, label in options.items()],
        value=value,
        inline=True,
        className="radio",
    )


def _number_input(component_id, value, **kwargs):
    return dcc.Input(
        id=component_id,
        type="number",
        value=value,
        debounce=True,
        className="field-input",
        **kwargs,
    )


def _left_column(explorer, view):
    spec = view.spec
    # The page opens with the right parameter groups shown, so that callback need not run.
    visible = cb.parameter_visibility(spec.projection, spec.clustering)
    embedding_options = []
    for name in explorer.embedding_names:
        kind, _ = explorer._sources[name]
        detail = {"array": "precomputed", "estimator": "estimator", "pixels": "raw pixels"}[kind]
        if name in explorer._embeddings:
            detail += f", {explorer._embeddings[name].shape[1]}-D"
        embedding_options.append({"label": f"{name} ({detail})", "value": name})
    return html.Div(
        [
            html.H2("skastro explorer"),
            html.Div(
                f"{len(explorer)} images of {'x'.join(map(str, explorer.images.shape[1:]))}",
                className="hint",
            ),
            html.H3("Embedding"),
            dcc.Dropdown(
                id="embedding", options=embedding_options, value=spec.embedding, clearable=False
            ),
            html.H3("Projection"),
            _radio("projection", PROJECTIONS, spec.projection),
            _radio("n-dims", {2: "2-D", 3: "3-D"}, spec.n_dims),
            _field(
                "t-SNE perplexity",
                _number_input("perplexity", spec.perplexity, min=1),
                "tsne-params",
                visible["tsne"],
            ),
            html.Div(
                [
                    _field(
                        "UMAP neighbours",
                        _number_input("umap-n-neighbors", spec.umap_n_neighbors, min=2),
                    ),
                    _field(
                        "UMAP min. distance",
                        _number_input("min-dist", spec.min_dist, min=0, max=1, step=0.05),
                    ),
                ],
                id="umap-params",
                style=visible["umap"],
            ),
            html.H3("Clustering"),
            _radio("clustering", CLUSTERINGS, spec.clustering),
            _field(
                "Number of clusters",
                _number_input("n-clusters", spec.n_clusters, min=2),
                "n-clusters-params",
                visible["n_clusters"],
            ),
            html.Div(
                [
                    _field(
                        "Min. cluster size",
                        _number_input("min-cluster-size", spec.min_cluster_size, min=2),
                    ),
                    _field(
                        "Min. samples",
                        _number_input(
                            "min-samples",
                            spec.min_samples,
                            min=1,
                            placeholder="= min. cluster size",
                        ),
                    ),
                ],
                id="hdbscan-params",
                style=visible["hdbscan"],
            ),
            html.Div(
                [
                    html.Label("Cluster on", className="field"),
                    _radio("cluster-space", CLUSTER_SPACES, spec.cluster_space),
                ],
                id="cluster-space-params",
                style=visible["cluster_space"],
            ),
            html.Button("Compute", id="compute", className="primary", n_clicks=0),
            html.Div(
                html.Div(id="progress-bar", className="progress-bar", style={"width": "0%"}),
                className="progress",
            ),
            html.Div(f"Showing {spec.describe()}", id="status", className="status"),
            dcc.Interval(id="poll", interval=POLL_INTERVAL_MS, disabled=True),
            dcc.Store(id="job-id"),
        ],
        className="column left",
    )


def _centre_column(explorer, view, figure):
    options, value = cb.color_dropdown(explorer, view.key)
    return html.Div(
        [
            html.Div(
                [
                    dcc.RadioItems(
                        id="centre-view",
                        options=[
                            {"label": "Map", "value": "map"},
                            {"label": "Anomalies", "value": "anomalies"},
                        ],
                        value="map",
                        inline=True,
                        className="centre-view",
                    ),
                    html.Span("Colour by"),
                    dcc.Dropdown(
                        id="color-by",
                        options=options,
                        value=value,
                        clearable=False,
                        className="color-by",
                    ),
                    html.Span(cb.selection_summary(None), id="selection-summary", className="hint"),
                    html.Button(
                        "Export selection (CSV)", id="export", className="secondary", n_clicks=0
                    ),
                    html.Span(id="export-status", className="hint"),
                    dcc.Download(id="download"),
                ],
                className="toolbar",
            ),
            html.Div(
                dcc.Graph(
                    id="scatter",
                    figure=figure,
                    className="graph",
                    style={"height": "100%"},
                    clear_on_unhover=True,
                    config={
                        "displaylogo": False,
                        "scrollZoom": True,
                        # The camera icon saves a PNG of the current view (the "screenshot").
                        "toImageButtonOptions": {
                            "format": "png",
                            "filename": "skastro-explorer",
                            "scale": 2,
                        },
                    },
                ),
                id="map-panel",
                className="panel",
            ),
            _anomaly_panel(explorer),
            dcc.Tooltip(id="tooltip", direction="right"),
            dcc.Store(id="view-key", data=view.key),
        ],
        className="centre",
    )


def _anomaly_panel(explorer):
    rank_options = [{"label": label, "value": value} for value, label in explorer.rank_options()]
    controls = html.Div(
        [
            html.Div(
                [
                    html.Div(
                        [
                            html.Label("Rank by", className="field"),
                            dcc.Dropdown(
                                id="rank-by",
                                options=rank_options,
                                value=rank_options[0]["value"],
                                clearable=False,
                                className="rank-by",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label("Images shown", className="field"),
                            dcc.Input(
                                id="gallery-size",
                                type="number",
                                value=av.GALLERY_SIZE,
                                min=1,
                                max=av.MAX_GALLERY_SIZE,
                                debounce=True,
                                className="field-input",
                                style={"width": "80px"},
                            ),
                        ]
                    ),
                    dcc.Checklist(
                        id="gallery-options",
                        options=[
                            {"label": "re-rank from my labels", "value": "rerank"},
                            {"label": "show labelled images", "value": "labelled"},
                        ],
                        value=["rerank"],
                        inline=True,
                        className="radio",
                    ),
                ],
                className="anomaly-controls",
            ),
            html.P(id="ranking-summary", className="hint"),
        ]
    )
    rank_plot = dcc.Graph(
        id="rank-change",
        style={"height": "230px"},
        config={"displaylogo": False, "displayModeBar": False},
    )
    return html.Div(
        [
            html.Div([controls, rank_plot], className="anomaly-top"),
            dcc.Loading(html.Div(id="gallery", className="gallery"), type="dot"),
        ],
        id="anomaly-panel",
        className="panel anomalies",
        style={"display": "none"},
    )


def _right_column(explorer):
    thumbnails = explorer._thumbnails
    band_options = [
        {"label": "RGB composite" if band == "rgb" else explorer.band_names[band], "value": band}
        for band in thumbnails.band_options()
    ]
    where = explorer.label_file.name if explorer.label_file is not None else "memory only"
    return html.Div(
        [
            html.H2("Instance"),
            html.Div(
                [
                    html.Label("Stretch", className="field", htmlFor="stretch"),
                    html.Label("Band", className="field", htmlFor="band"),
                    html.Label("Neighbours", className="field", htmlFor="k"),
                    dcc.Dropdown(
                        id="stretch", options=list(STRETCHES), value="asinh", clearable=False
                    ),
                    dcc.Dropdown(
                        id="band",
                        options=band_options,
                        value=thumbnails.normalize_band(None),
                        clearable=False,
                        disabled=len(band_options) < 2,
                    ),
                    dcc.Input(
                        id="k",
                        type="number",
                        value=explorer.n_neighbors,
                        min=1,
                        max=cb.MAX_K,
                        debounce=True,
                        className="field-input",
                        placeholder="k",
                    ),
                ],
                className="instance-controls",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Strong("Label "),
                            dcc.RadioItems(
                                id="label-target",
                                options=[
                                    {"label": "the image shown", "value": "image"},
                                    {"label": "the selection", "value": "selection"},
                                ],
                                value="image",
                                inline=True,
                                className="radio",
                                style={"display": "inline"},
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Button(
                                "✓ Interesting", id="label-interesting", className="yes", n_clicks=0
                            ),
                            html.Button(
                                "✗ Not interesting",
                                id="label-not-interesting",
                                className="no",
                                n_clicks=0,
                            ),
                            dcc.Input(
                                id="label-class",
                                type="text",
                                placeholder="class name",
                                debounce=False,
                                maxLength=60,
                            ),
                            html.Button("Set class", id="label-class-apply", n_clicks=0),
                            html.Button("Clear", id="label-clear", n_clicks=0),
                        ],
                        className="label-buttons",
                    ),
                    html.Div(f"Labels are saved to {where}.", id="label-status", className="hint"),
                ],
                className="label-box",
            ),
            html.Div(
                html.P(
                    "Click a point to see its image, metadata and similar images.", className="hint"
                ),
                id="instance-panel",
            ),
            dcc.Store(id="selected-index"),
            dcc.Store(id="ring-drawn"),
            dcc.Store(id="labels-version", data=0),
        ],
        className="column right",
    )


def _progress_style(fraction):
    return {"width": f"{100 * max(0.0, min(1.0, fraction)):.0f}%"}


def _serve_plotly(app):
    """Add the route that serves the explorer's plotly.js bundle; return its address.

    The address holds a hash of the file, so the browser may cache it for good. Without the
    bundle, the page loads the full plotly.js that dcc.Graph would.
    """
    source = bundle_source()
    if source is None:
        return app.get_relative_path("/_dash-component-suites/plotly/package_data/plotly.min.js")
    route = f"{PLOTLY_ROUTE}{hashlib.sha256(source).hexdigest()[:16]}.min.js"

    @app.server.route(route)
    def plotly_js():
        response = flask.Response(source, mimetype="text/javascript")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    return app.get_relative_path(route)


def _serve_layout_serialised_once(app):
    """Serialise the (static) layout once and serve those bytes on every page load.

    Dash turns the layout into JSON on each request; with 50,000 points that takes 0.2 s of
    the first render. The layout is built once per app (callbacks change components in the
    browser, not ``app.layout``), so the bytes never go stale.
    """
    body = to_json(app.get_layout())

    def serve_layout():
        return app.backend.make_response(body, mimetype="application/json")

    for rule in app.server.url_map.iter_rules():
        if rule.rule.endswith("/_dash-layout"):
            app.server.view_functions[rule.endpoint] = serve_layout


def _is_callback_request(body, callback_map):
    """Whether a request body has the structure Dash's callback requests have.

    The values are the callbacks' business (``_callbacks`` checks them); this only checks
    the envelope, so a request of the wrong shape is answered with HTTP 400 instead of failing
    inside Dash with a 500 and a server traceback.
    """
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return False
    spec = callback_map.get(body["output"])
    if spec is None or "callback" not in spec:  # unknown, or run in the browser
        return False
    inputs, state = body.get("inputs"), body.get("state", [])
    if not isinstance(inputs, list) or not isinstance(state, list):
        return False
    if len(inputs) != len(spec["inputs"]) or len(state) != len(spec["state"]):
        return False

    def is_entry(entry):
        if isinstance(entry, list):  # pattern-matching inputs (ALL) send a list of entries
            return all(is_entry(item) for item in entry)
        return isinstance(entry, dict) and "id" in entry and isinstance(entry.get("property"), str)

    # a callback with several outputs is keyed "..a.prop...b.prop..", and sent a list of them;
    # they must be the callback's own outputs
    outputs = body.get("outputs")
    multiple = body["output"].startswith("..")
    declared = body["output"].strip(".").split("...") if multiple else [body["output"]]
    if isinstance(outputs, list) != multiple:
        return False
    outputs = outputs if multiple else [outputs]
    if len(outputs) != len(declared) or not all(
        isinstance(o, dict)
        and (not isinstance(o.get("id"), str) or f"{o['id']}.{o.get('property')}" == name)
        for o, name in zip(outputs, declared)
    ):
        return False
    changed = body.get("changedPropIds", [])
    return (
        all(is_entry(entry) for entry in inputs + state + outputs)
        and isinstance(changed, list)
        and all(isinstance(prop, str) for prop in changed)
    )


def _refuse_malformed_callback_requests(app):
    """Answer callback requests whose JSON has the wrong structure with HTTP 400."""
    endpoint = "/_dash-update-component"
    for rule in app.server.url_map.iter_rules():
        if rule.rule.endswith("_dash-update-component"):
            endpoint = rule.endpoint
    dispatch = app.server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def checked_dispatch(*args, **kwargs):
        if not _is_callback_request(flask.request.get_json(silent=True), app.callback_map):
            return flask.Response("malformed callback request", status=400)
        return dispatch(*args, **kwargs)

    app.server.view_functions[endpoint] = checked_dispatch


def build_app(explorer):
    """Build the Dash app for ``explorer`` (see :meth:`Explorer.make_app`)."""
    view = explorer.view
    # Built here once, in the page's first response: the 50,000-point figure reaches the
    # browser with the layout instead of after a second round trip.
    figure = explorer.figure(view)
    app = Dash(
        __name__,
        title="skastro explorer",
        update_title=None,
        serve_locally=True,
        # The neighbour buttons exist only once a point is clicked.
        suppress_callback_exceptions=True,
        assets_ignore=".*",
    )
    plotly_url = _serve_plotly(app)
    app.index_string = _INDEX.replace(
        "{plotly_loader}", _PLOTLY_LOADER.replace("PLOTLY_URL", plotly_url)
    ).replace("{drag_watch}", _DRAG_WATCH)
    app.layout = html.Div(
        [
            _left_column(explorer, view),
            _centre_column(explorer, view, figure),
            _right_column(explorer),
        ],
        className="explorer",
    )
    _serve_layout_serialised_once(app)

    @app.server.route(THUMBNAIL_ROUTE + "<int:index>.png")
    def thumbnail(index):
        # Only an integer index into the in-memory images reaches the renderer: no request
        # data ever becomes a path. Bad stretch/band/size values are a 400, not a 500.
        args = flask.request.args
        try:
            png = explorer.thumbnail(
                index,
                stretch=args.get("stretch", "asinh"),
                band=args.get("band") or None,
                size=int(args.get("size", cb.TOOLTIP_IMAGE_SIZE)),
            )
        except IndexError:
            flask.abort(404)
        except ValueError:
            flask.abort(400)
        response = flask.Response(png, mimetype="image/png")
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @app.callback(
        Output("tsne-params", "style"),
        Output("umap-params", "style"),
        Output("n-clusters-params", "style"),
        Output("hdbscan-params", "style"),
        Output("cluster-space-params", "style"),
        Input("projection", "value"),
        Input("clustering", "value"),
        prevent_initial_call=True,
    )
    def show_parameters(projection, clustering):
        styles = cb.parameter_visibility(projection, clustering)
        return (
            styles["tsne"],
            styles["umap"],
            styles["n_clusters"],
            styles["hdbscan"],
            styles["cluster_space"],
        )

    @app.callback(
        Output("job-id", "data"),
        Output("poll", "disabled"),
        Output("compute", "disabled"),
        Output("status", "children"),
        Output("progress-bar", "style"),
        Output("view-key", "data"),
        Input("compute", "n_clicks"),
        Input("poll", "n_intervals"),
        State("job-id", "data"),
        State("embedding", "value"),
        State("projection", "value"),
        State("n-dims", "value"),
        State("clustering", "value"),
        State("cluster-space", "value"),
        State("perplexity", "value"),
        State("umap-n-neighbors", "value"),
        State("min-dist", "value"),
        State("n-clusters", "value"),
        State("min-cluster-size", "value"),
        State("min-samples", "value"),
        prevent_initial_call=True,
    )
    def computation(
        _clicks,
        _intervals,
        job_id,
        embedding,
        projection,
        n_dims,
        clustering,
        cluster_space,
        perplexity,
        umap_n_neighbors,
        min_dist,
        n_clusters,
        min_cluster_size,
        min_samples,
    ):
        # One callback both starts the worker and polls it, so the two never race over the
        # button, the progress bar and the interval.
        if ctx.triggered_id == "compute":
            started = cb.start_computation(
                explorer,
                dict(
                    embedding=embedding,
                    projection=projection,
                    n_dims=n_dims,
                    clustering=clustering,
                    cluster_space=cluster_space,
                    perplexity=perplexity,
                    umap_n_neighbors=umap_n_neighbors,
                    min_dist=min_dist,
                    n_clusters=n_clusters,
                    min_cluster_size=min_cluster_size,
                    min_samples=min_samples,
                ),
            )
            running = started["job_id"] is not None
            return (
                started["job_id"],
                not running,
                running,
                started["status"],
                _progress_style(0.0),
                no_update,
            )
        if job_id is None:
            # A tick queued before the interval was switched off: nothing to report.
            raise PreventUpdate
        state = cb.poll_computation(explorer, job_id)
        if not state["done"]:
            return (
                no_update,
                False,
                True,
                state["status"],
                _progress_style(state["fraction"]),
                no_update,
            )
        view_key = state["view_key"] if state["view_key"] is not None else no_update
        return (None, True, False, state["status"], _progress_style(state["fraction"]), view_key)

    @app.callback(
        Output("color-by", "options"),
        Output("color-by", "value"),
        Input("view-key", "data"),
        State("color-by", "value"),
        prevent_initial_call=True,
    )
    def color_menu(view_key, current):
        return cb.color_dropdown(explorer, view_key, current)

    @app.callback(
        Output("scatter", "figure"),
        Input("view-key", "data"),
        Input("color-by", "value"),
        Input("labels-version", "data"),
        State("selected-index", "data"),
        prevent_initial_call=True,
    )
    def scatter(view_key, color_by, _labels_version, selected):
        if ctx.triggered_id == "labels-version" and color_by != "user-label":
            raise PreventUpdate  # only the "your labels" colouring shows the labels
        return cb.figure_for(explorer, view_key, color_by, selected)

    @app.callback(
        Output("instance-panel", "children"),
        Output("selected-index", "data"),
        Input("scatter", "clickData"),
        Input({"type": "neighbour", "index": ALL}, "n_clicks"),
        Input({"type": "gallery", "index": ALL}, "n_clicks"),
        Input("rank-change", "clickData"),
        Input("stretch", "value"),
        Input("band", "value"),
        Input("k", "value"),
        Input("view-key", "data"),
        Input("labels-version", "data"),
        State("selected-index", "data"),
        prevent_initial_call=True,
    )
    def instance(
        click_data, _neighbour_clicks, _gallery_clicks, rank_click, stretch, band, k, view_key,
        _labels_version, current,
    ):  # fmt: skip
        trigger = ctx.triggered_id
        if trigger == "scatter":
            index = cb.clicked_index(click_data)
        elif trigger == "rank-change":
            index = cb.clicked_index(rank_click)
        elif isinstance(trigger, dict):
            # New neighbour buttons also fire this with n_clicks 0: only a real click counts.
            if not ctx.triggered[0]["value"]:
                raise PreventUpdate
            index = cb.selected_index(trigger.get("index"))
        else:
            # A display setting or the view changed: redraw the panel for the same image.
            index = cb.selected_index(current)
        if index is None or not 0 <= index < len(explorer):
            raise PreventUpdate
        return cb.show_instance(explorer, view_key, index, stretch, band, k)

    @app.callback(
        Output("map-panel", "style"),
        Output("anomaly-panel", "style"),
        Input("centre-view", "value"),
        prevent_initial_call=True,
    )
    def centre_view(value):
        hidden = {"display": "none"}
        return (hidden, {}) if value == "anomalies" else ({}, hidden)

    @app.callback(
        Output("labels-version", "data"),
        Output("label-status", "children"),
        Input("label-interesting", "n_clicks"),
        Input("label-not-interesting", "n_clicks"),
        Input("label-class-apply", "n_clicks"),
        Input("label-class", "n_submit"),
        Input("label-clear", "n_clicks"),
        Input({"type": "gallery-label", "index": ALL, "label": ALL}, "n_clicks"),
        State("label-target", "value"),
        State("label-class", "value"),
        State("selected-index", "data"),
        State("scatter", "selectedData"),
        prevent_initial_call=True,
    )
    def label(*args):
        target, class_name, selected, selected_data = args[-4:]
        trigger = ctx.triggered_id
        if isinstance(trigger, dict):
            # New gallery buttons also fire this with n_clicks 0: only a real click counts.
            if not ctx.triggered[0]["value"]:
                raise PreventUpdate
            indices, label = [trigger["index"]], trigger["label"]
        else:
            label = av.label_from_action(trigger, class_name)
            if trigger in ("label-class", "label-class-apply") and label is None:
                return no_update, "Type a class name first."
            if target == "selection":
                indices = cb.selected_indices(selected_data)
            else:
                index = cb.selected_index(selected)
                indices = [] if index is None else [index]
        return explorer._label_store.version, av.apply_label(explorer, indices, label)

    @app.callback(
        Output("gallery", "children"),
        Output("rank-change", "figure"),
        Output("ranking-summary", "children"),
        Input("centre-view", "value"),
        Input("rank-by", "value"),
        Input("gallery-options", "value"),
        Input("gallery-size", "value"),
        Input("labels-version", "data"),
        Input("view-key", "data"),
        Input("stretch", "value"),
        Input("band", "value"),
        prevent_initial_call=True,
    )
    def anomaly_gallery(centre, rank_by, options, count, _labels_version, view_key, stretch, band):
        if centre != "anomalies":
            raise PreventUpdate  # computed when shown
        return av.gallery(explorer, view_key, rank_by, options, count, stretch, band)

    # Moves the ring in the browser once the panel has been painted (see show_instance).
    app.clientside_callback(
        _RING_SCRIPT,
        Output("ring-drawn", "data"),
        Input("selected-index", "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("selection-summary", "children"),
        Input("scatter", "selectedData"),
        prevent_initial_call=True,
    )
    def summary(selected_data):
        return cb.selection_summary(selected_data)

    @app.callback(
        Output("download", "data"),
        Output("export-status", "children"),
        Input("export", "n_clicks"),
        State("scatter", "selectedData"),
        State("view-key", "data"),
        prevent_initial_call=True,
    )
    def export(_clicks, selected_data, view_key):
        text = cb.selection_csv(explorer, view_key, selected_data)
        if text is None:
            return no_update, "Nothing selected: use the box or lasso tool first."
        count = text.count("\n") - 1
        return dict(content=text, filename="skastro-selection.csv"), f"Exported {count} ids."

    @app.callback(
        Output("tooltip", "show"),
        Output("tooltip", "bbox"),
        Output("tooltip", "children"),
        Input("scatter", "hoverData"),
        Input("scatter", "selectedData"),
        State("stretch", "value"),
        State("band", "value"),
        prevent_initial_call=True,
    )
    def tooltip(hover_data, _selected_data, stretch, band):
        if "scatter.selectedData" in ctx.triggered_prop_ids:
            # a box or lasso has just been drawn (plotly reports the hover under the mouse in
            # the same update): the card must not cover the selection
            return False, no_update, no_update

        def url(index):
            query = f"?stretch={stretch}&band={band}&size={cb.TOOLTIP_IMAGE_SIZE}"
            return app.get_relative_path(f"{THUMBNAIL_ROUTE}{index}.png") + query

        return cb.hover_tooltip(explorer, hover_data, url)

    _refuse_malformed_callback_requests(app)
    return app
