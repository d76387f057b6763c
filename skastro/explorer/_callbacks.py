"""What the web app's callbacks do, as plain functions of the explorer and the inputs.

The Dash callbacks in :mod:`skastro.explorer._app` only unpack their arguments and call these,
so every behaviour is unit-tested without a browser or a server.
"""

import csv
import io

from skastro.explorer._compute import CLUSTERINGS, ViewSpec
from skastro.explorer._figure import ring_point

# Sizes of the instance panel's images, in CSS pixels.
MAIN_IMAGE_SIZE = 192
NEIGHBOUR_IMAGE_SIZE = 72
TOOLTIP_IMAGE_SIZE = 96
MAX_K = 30


# -- what the page sends back, checked -------------------------------------------------------
# A request to a Dash callback is JSON from the browser: anything that parses can arrive in
# place of a click event, a stored key or a dropdown value. These helpers turn values of the
# wrong structure into "nothing" (None, [], a default), so the app answers with a harmless
# response instead of an HTTP 500 and a server traceback.


def text_value(value, default=None):
    """``value`` if it is text (a stored key, a dropdown value), else ``default``."""
    return value if isinstance(value, str) else default


def _event_points(data):
    """The ``points`` of plotly event data (``clickData``, ``selectedData``, ...), as dicts."""
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        return []
    return [point for point in data["points"] if isinstance(point, dict)]


def _index(value):
    """An image index from page data (an int, or a one-item list), or None."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def display_settings(stretch, band, k, explorer):
    """Thumbnail stretch, band and neighbour count from the page, invalid ones replaced."""
    from skastro.explorer._thumbnails import STRETCHES

    stretch = stretch if stretch in STRETCHES else "asinh"
    if not (band is None or band == "rgb"):
        band = _index(band)
        if band is not None and not 0 <= band < explorer.images.shape[1]:
            band = None
    return stretch, band, _number(k, None, int)


def _number(value, default, cast=float, low=None, high=None):
    """A number typed in an input box, or the default when it is empty or invalid."""
    if value is None or value == "" or isinstance(value, bool):
        return default
    if not isinstance(value, int | float | str):
        return default
    try:
        value = cast(value)
    except (TypeError, ValueError, OverflowError):
        return default
    if isinstance(value, float) and value != value:  # NaN
        return default
    if low is not None:
        value = max(low, value)
    if high is not None:
        value = min(high, value)
    return value


def spec_from_controls(explorer, controls):
    """Build the :class:`ViewSpec` that the left column's controls describe.

    Parameters
    ----------
    explorer : Explorer
    controls : dict
        Keys ``embedding``, ``projection``, ``n_dims``, ``clustering``, ``cluster_space``,
        ``perplexity``, ``umap_n_neighbors``, ``min_dist``, ``n_clusters``,
        ``min_cluster_size``, ``min_samples``; empty boxes fall back to the defaults.
    """
    defaults = ViewSpec(embedding="")
    min_samples = _number(controls.get("min_samples"), None, int, low=1)
    return ViewSpec(
        embedding=text_value(controls.get("embedding")) or explorer.embedding_names[0],
        projection=text_value(controls.get("projection")) or defaults.projection,
        n_dims=_number(controls.get("n_dims"), 2, int),
        clustering=text_value(controls.get("clustering")) or "none",
        cluster_space=text_value(controls.get("cluster_space")) or defaults.cluster_space,
        perplexity=_number(controls.get("perplexity"), defaults.perplexity, float, low=1.0),
        umap_n_neighbors=_number(
            controls.get("umap_n_neighbors"), defaults.umap_n_neighbors, int, low=2
        ),
        min_dist=_number(controls.get("min_dist"), defaults.min_dist, float, low=0.0, high=1.0),
        n_clusters=_number(controls.get("n_clusters"), defaults.n_clusters, int, low=2),
        min_cluster_size=_number(
            controls.get("min_cluster_size"), defaults.min_cluster_size, int, low=2
        ),
        min_samples=min_samples,
        random_state=explorer.random_state,
    ).validate()


def start_computation(explorer, controls):
    """Start computing the view the controls describe in a worker thread.

    Returns
    -------
    dict
        ``job_id`` (None when the settings are invalid), ``status`` text and ``fraction``.
    """
    try:
        spec = spec_from_controls(explorer, controls)
    except (ValueError, TypeError) as exc:
        return {"job_id": None, "status": f"Invalid settings: {exc}", "fraction": 0.0}
    job_id = explorer._start_job(spec)
    return {"job_id": job_id, "status": f"Computing {spec.describe()}…", "fraction": 0.0}


def poll_computation(explorer, job_id):
    """Progress of a computation started by :func:`start_computation`.

    Returns
    -------
    dict
        ``done`` (bool), ``fraction`` in [0, 1], ``status`` text, ``view_key`` of the
        finished view (None until it is ready, or on error) and ``error`` text or None.
    """
    job_id = text_value(job_id)
    job = explorer._job(job_id) if job_id else None
    if job is None:
        return {"done": True, "fraction": 0.0, "status": "", "view_key": None, "error": None}
    import time

    elapsed = (job.finished or time.perf_counter()) - job.started
    if job.error is not None:
        status = f"Failed after {elapsed:.1f} s: {job.error}"
        return {
            "done": True,
            "fraction": 0.0,
            "status": status,
            "view_key": None,
            "error": job.error,
        }
    if job.done:
        status = f"Done in {elapsed:.1f} s: {job.spec.describe()}"
        return {
            "done": True,
            "fraction": 1.0,
            "status": status,
            "view_key": job.view_key,
            "error": None,
        }
    status = f"{job.message[:1].upper()}{job.message[1:]}… ({elapsed:.0f} s)"
    return {
        "done": False,
        "fraction": job.fraction,
        "status": status,
        "view_key": None,
        "error": None,
    }


def color_dropdown(explorer, view_key, current=None):
    """Options of the colour-by menu for a view, and the value to show.

    A view with clusters opens coloured by cluster (the user just asked for them); otherwise
    the current colouring is kept when the view offers it.
    """
    view = explorer._view_for(text_value(view_key))
    options = [{"label": label, "value": value} for value, label in explorer.color_options(view)]
    current = text_value(current)
    if view.clusters is None and current in {option["value"] for option in options}:
        return options, current
    return options, explorer.default_color(view)


def figure_for(explorer, view_key, color_by, selected=None):
    """The full scatter figure for a view and a colouring."""
    view = explorer._view_for(text_value(view_key))
    if text_value(color_by) not in {value for value, _ in explorer.color_options(view)}:
        color_by = None
    selected = selected_index(selected)
    if selected is not None and not 0 <= selected < len(explorer):
        selected = None
    return explorer.figure(view, color_by=color_by, selected=selected)


def clicked_index(click_data):
    """Index of the clicked point in plotly's ``clickData``, or None."""
    points = _event_points(click_data)
    return _index(points[0].get("customdata")) if points else None


def _thumbnail_button(explorer, index, caption, stretch, band):
    from dash import html

    return html.Button(
        [
            html.Img(
                src=explorer._thumbnails.data_uri(
                    index, stretch=stretch, band=band, size=NEIGHBOUR_IMAGE_SIZE
                ),
                alt=f"image {explorer.ids[index]}",
            ),
            html.Div(caption, className="thumb-caption"),
        ],
        id={"type": "neighbour", "index": int(index)},
        className="thumb",
        title=f"id {explorer.ids[index]}: click to show",
        n_clicks=0,
        **{"data-index": str(int(index))},
    )


def instance_panel(explorer, view_key, index, stretch="asinh", band=None, k=None):
    """The instance panel's content for image ``index``.

    Shows the image, its record (id, label, cluster, metadata), then the ``k`` most similar
    images in its cluster and the ``k`` nearest from other clusters, each a button whose id
    ``{"type": "neighbour", "index": j}`` moves the panel to image ``j``.

    Returns
    -------
    list of dash components
    """
    from dash import html

    view = explorer._view_for(text_value(view_key))
    index = int(index)
    k = _number(k, explorer.n_neighbors, int, low=1, high=MAX_K)
    same, other = explorer.similar(index, k=k, view=view)
    clusters = view.clusters

    def cluster_name(j):
        return "noise" if clusters[j] < 0 else f"cluster {clusters[j]}"

    main = html.Img(
        src=explorer._thumbnails.data_uri(index, stretch=stretch, band=band, size=MAIN_IMAGE_SIZE),
        className="instance-image",
        id="instance-image",
        alt=f"image {explorer.ids[index]}",
        **{"data-index": str(index)},
    )
    record = html.Table(
        html.Tbody(
            [
                html.Tr([html.Th(name), html.Td(value)])
                for name, value in explorer.instance_record(index, view)
            ]
        ),
        className="record",
    )
    if clusters is None:
        same_title = "Most similar images"
    elif clusters[index] < 0:
        same_title = "Most similar noise points"
    else:
        same_title = f"Most similar in cluster {clusters[index]}"
    children = [
        main,
        record,
        html.H4(same_title),
        html.Div(
            [_thumbnail_button(explorer, j, explorer.ids[j], stretch, band) for j in same]
            or [html.P("no other image in this cluster", className="hint")],
            className="thumb-grid",
            id="similar-same",
        ),
    ]
    if clusters is not None:
        children += [
            html.H4("Nearest from other clusters"),
            html.Div(
                [
                    _thumbnail_button(
                        explorer, j, f"{explorer.ids[j]} · {cluster_name(j)}", stretch, band
                    )
                    for j in other
                ]
                or [html.P("every image is in this cluster", className="hint")],
                className="thumb-grid",
                id="similar-other",
            ),
        ]
    return children


def show_instance(explorer, view_key, index, stretch, band, k):
    """Panel content for ``index`` and the selection to store: index and ring position.

    The page moves the ring itself, after the panel is drawn (see ``_RING_SCRIPT`` in
    ``_app``): redrawing 50,000 WebGL points takes 100-250 ms in a software-rendered browser,
    which should not delay the panel.
    """
    view_key = text_value(view_key)
    view = explorer._view_for(view_key)
    stretch, band, k = display_settings(stretch, band, k, explorer)
    children = instance_panel(explorer, view_key, index, stretch, band, k)
    return children, ring_point(view.coords, index)


def selected_index(selection):
    """The index in a stored selection (``{"index": i, ...}``), or None."""
    if isinstance(selection, dict):
        selection = selection.get("index")
    return _index(selection) if not isinstance(selection, list) else None


def selected_indices(selected_data):
    """Indices of the points in plotly's ``selectedData``, sorted and without repeats.

    The selection ring is a trace of its own, so a selected point can appear twice.
    """
    indices = {_index(point.get("customdata")) for point in _event_points(selected_data)}
    return sorted(i for i in indices if i is not None)


def selection_csv(explorer, view_key, selected_data):
    """CSV text of the selected points: ``id``, then ``label`` and ``cluster`` when known.

    Returns None when nothing is selected.
    """
    indices = [i for i in selected_indices(selected_data) if 0 <= i < len(explorer)]
    if not indices:
        return None
    view = explorer._view_for(text_value(view_key))
    header = ["id"]
    if explorer.labels is not None:
        header.append("label")
    if view.clusters is not None:
        header.append("cluster")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i in indices:
        row = [explorer.ids[i]]
        if explorer.labels is not None:
            row.append(explorer.labels[i])
        if view.clusters is not None:
            row.append(int(view.clusters[i]))
        writer.writerow(row)
    return buffer.getvalue()


def selection_summary(selected_data):
    """A short text saying how many points are selected."""
    count = len(selected_indices(selected_data))
    if count == 0:
        return "Box/lasso select to export ids"
    return f"{count} point{'s' if count != 1 else ''} selected"


def hover_tooltip(explorer, hover_data, thumbnail_url):
    """``(show, bbox, children)`` of the hover tooltip: the hovered image and its id.

    ``thumbnail_url(index)`` gives the image address; the server renders it from the
    in-memory array by that integer index.
    """
    from dash import html

    points = _event_points(hover_data)
    if not points:
        return False, None, None
    point = points[0]
    bbox = point.get("bbox")
    index = clicked_index({"points": [point]})
    if not isinstance(bbox, dict) or index is None or not 0 <= index < len(explorer):
        return False, None, None
    children = html.Div(
        [
            html.Img(src=thumbnail_url(index), width=TOOLTIP_IMAGE_SIZE),
            html.Div(str(explorer.ids[index]), className="thumb-caption"),
        ]
    )
    return True, bbox, children


def parameter_visibility(projection, clustering):
    """CSS ``display`` of the parameter groups that matter for the chosen methods."""

    def shown(condition):
        return {"display": "block" if condition else "none"}

    projection, clustering = text_value(projection), text_value(clustering)
    return {
        "tsne": shown(projection == "tsne"),
        "umap": shown(projection == "umap"),
        "n_clusters": shown(clustering in ("kmeans", "spectral")),
        "hdbscan": shown(clustering == "hdbscan"),
        "cluster_space": shown(clustering in CLUSTERINGS and clustering != "none"),
    }
