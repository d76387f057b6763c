"""The scatter figure shared by the web app and the HTML export.

A categorical colouring (clusters, labels, a metadata column with few values) gets one trace
per category, so plotly's legend isolates a class with a double click and hides one with a
click; a continuous column gets a single trace with a colour bar. 2-D views use ``scattergl``
(WebGL), which draws 50,000 points where SVG would crawl.
"""

import base64
import functools

import numpy as np
import pandas as pd

# Enough distinct colours for typical cluster counts; beyond that colours repeat.
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#ad494a",
    "#637939",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#843c39",
    "#d6616b",
    "#8ca252",
    "#bd9e39",
    "#ce6dbd",
    "#6baed6",
    "#fd8d3c",
)
_NOISE_COLOUR = "#b0b0b0"
# A categorical legend with more entries than this is unreadable: the rest become "other".
MAX_CATEGORIES = 40
# Numeric columns with more distinct values than this are coloured on a continuous scale.
_MAX_NUMERIC_CATEGORIES = 12

HIGHLIGHT_NAME = "selected point"
# Categories drawn in grey, under the others, and listed last.
_GREY_NAMES = ("noise", "missing", "other", "unlabelled")
# A positive, right-skewed column (skewness above _LOG_SCALE_SKEW) whose 99th percentile is at
# least _LOG_SCALE_RATIO times its 1st is coloured on a log scale (fluxes, sizes): on a linear
# scale all but the brightest points would share one colour.
_LOG_SCALE_SKEW = 1.0
_LOG_SCALE_RATIO = 10.0


def marker_size(n_points, n_dims=2):
    """Marker size that keeps 50,000 points legible and 50 points visible."""
    if n_dims == 3:
        return 5 if n_points < 1000 else 3 if n_points < 10000 else 2
    return 9 if n_points < 1000 else 6 if n_points < 10000 else 4


def is_categorical(values):
    """Whether ``values`` should be coloured by category rather than on a colour scale."""
    values = pd.Series(values)
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    return values.nunique(dropna=True) <= _MAX_NUMERIC_CATEGORIES


def _category_names(values, kind):
    """Display name of each point's category; clusters read "cluster 3" and "noise"."""
    if kind == "cluster":
        values = np.asarray(values)
        return np.where(values < 0, "noise", np.char.add("cluster ", values.astype(str)))
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), "missing").astype(str).to_numpy()


def _ordered_categories(names, values, kind):
    """Categories in legend order: numeric order when the values are numbers, noise last."""
    frame = pd.DataFrame({"name": names, "value": pd.Series(values, dtype=object)})
    counts = frame["name"].value_counts()
    if len(counts) > MAX_CATEGORIES:
        keep = set(counts.index[: MAX_CATEGORIES - 1])
        names = np.where(np.isin(names, list(keep)), names, "other")
        frame["name"] = names
    firsts = frame.drop_duplicates("name")

    def sort_key(row):
        name, value = row
        if name in _GREY_NAMES:
            return (2, 0.0, name)
        if isinstance(value, int | float | np.number) and not isinstance(value, bool):
            return (0, float(value), name)
        return (1, 0.0, name)

    ordered = sorted(zip(firsts["name"], firsts["value"]), key=sort_key)
    return names, [name for name, _ in ordered]


def use_log_scale(values):
    """Whether a numeric column is positive and skewed enough for a log colour scale.

    Examples
    --------
    >>> import numpy as np
    >>> use_log_scale(np.logspace(0, 4, 100)), use_log_scale(np.linspace(1, 400, 100))
    (True, False)
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 3 or values.min() <= 0:
        return False
    low, high = np.percentile(values, [1, 99])
    spread = values.std()
    skew = float(((values - values.mean()) ** 3).mean() / spread**3) if spread > 0 else 0.0
    return bool(skew > _LOG_SCALE_SKEW and high / low >= _LOG_SCALE_RATIO)


def _log_colorbar(values):
    """Tick positions (log10) and labels (the values) for a log colour bar."""
    low, high = np.log10(values.min()), np.log10(values.max())
    decades = range(int(np.floor(low)), int(np.ceil(high)) + 1)
    for mantissas in ((1, 2, 5), (1,)):
        ticks = [
            m * 10.0**e for e in decades for m in mantissas if low <= np.log10(m * 10.0**e) <= high
        ]
        if len(ticks) <= 8:
            break
    return [float(np.log10(t)) for t in ticks], [f"{t:.3g}" for t in ticks]


def typed_array(values):
    """A numeric array in plotly.js's base64 typed-array form.

    plotly.js decodes it straight into a typed array, so 50,000 coordinates travel as
    200 kB of base64 instead of a JSON list that the browser must parse number by number.
    """
    values = np.ascontiguousarray(values, dtype="<f4")
    return {"dtype": "f4", "bdata": base64.b64encode(values.tobytes()).decode("ascii")}


def _trace(n_dims, coords, index, **kwargs):
    # customdata (each point's index into the data set) stays a JSON list: dcc.Graph copies
    # it into clickData/selectedData by indexing the trace's customdata, which does not work
    # on typed arrays.
    trace = dict(
        type="scatter3d" if n_dims == 3 else "scattergl",
        x=typed_array(coords[index, 0]),
        y=typed_array(coords[index, 1]),
        customdata=np.asarray(index).tolist(),
        **kwargs,
    )
    if n_dims == 3:
        trace["z"] = typed_array(coords[index, 2])
    return trace


@functools.lru_cache(maxsize=1)
def _template():
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def build_figure(
    coords,
    color=None,
    *,
    color_kind="none",
    color_name="",
    title="",
    uirevision=None,
    selected=None,
):
    """Build the scatter as a plotly figure dictionary.

    A plain dictionary, not a :class:`plotly.graph_objects.Figure`: validating 50,000 points
    through plotly.py's objects takes seconds, and Dash and ``plotly.io.to_html`` take the
    dictionary as it is.

    Parameters
    ----------
    coords : ndarray of shape (n, 2) or (n, 3)
    color : array-like of shape (n,), default=None
        Values to colour by; None draws every point in one colour.
    color_kind : {"none", "cluster", "categorical", "continuous"}, default="none"
    color_name : str, default=""
        Legend or colour-bar title.
    title : str, default=""
    uirevision : str, default=None
        Kept zoom and legend state across updates that share it.
    selected : int, default=None
        Index of the point to ring (the one shown in the instance panel).

    Returns
    -------
    dict
        With ``data`` and ``layout``. Every trace's ``customdata`` holds the points' indices
        into the data set; the last trace is the selection ring. No per-point text is sent:
        the app and the HTML export show the hovered point's id and thumbnail in their own
        tooltips, and 50,000 ids would double the figure's size.

    Examples
    --------
    >>> import numpy as np
    >>> figure = build_figure(np.zeros((3, 2)), np.array([0, 1, 1]), color_kind="cluster")
    >>> [(trace["name"], trace["customdata"]) for trace in figure["data"]]
    [('cluster 0', [0]), ('cluster 1', [1, 2]), ('selected point', [])]
    """
    coords = np.asarray(coords, dtype=np.float32)
    n_points, n_dims = coords.shape
    size = marker_size(n_points, n_dims)
    hover = "%{fullData.name}<extra></extra>"
    traces = []
    if color is None or color_kind == "none":
        index = np.arange(n_points, dtype=np.int32)
        traces.append(
            _trace(
                n_dims,
                coords,
                index,
                mode="markers",
                name="points",
                # No label (it would say nothing); hover events still reach the tooltips.
                hoverinfo="none",
                showlegend=False,
                marker=dict(size=size, color=_PALETTE[0], opacity=0.8),
            )
        )
    elif color_kind == "continuous":
        values = pd.to_numeric(pd.Series(color), errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        index = np.flatnonzero(finite).astype(np.int32)
        shown, colorbar = values[finite], dict(title=dict(text=color_name), thickness=14)
        hovertemplate = color_name + "=%{marker.color:.4g}<extra></extra>"
        if use_log_scale(shown):
            tickvals, ticktext = _log_colorbar(shown)
            shown = np.log10(shown)
            colorbar.update(
                title=dict(text=f"{color_name} (log scale)"), tickvals=tickvals, ticktext=ticktext
            )
            hovertemplate = f"log10 {color_name}=" + "%{marker.color:.3f}<extra></extra>"
        traces.append(
            _trace(
                n_dims,
                coords,
                index,
                mode="markers",
                name=color_name,
                showlegend=False,
                hovertemplate=hovertemplate,
                marker=dict(
                    size=size,
                    color=typed_array(shown),
                    colorscale="Viridis",
                    showscale=True,
                    opacity=0.85,
                    colorbar=colorbar,
                ),
            )
        )
        if not finite.all():
            index = np.flatnonzero(~finite).astype(np.int32)
            traces.append(
                _trace(
                    n_dims,
                    coords,
                    index,
                    mode="markers",
                    name="missing",
                    hovertemplate=hover,
                    marker=dict(size=size, color=_NOISE_COLOUR, opacity=0.6),
                )
            )
    else:
        values = np.asarray(color, dtype=object) if color_kind != "cluster" else np.asarray(color)
        names = _category_names(values, color_kind)
        names, categories = _ordered_categories(names, values, color_kind)
        for number, name in enumerate(categories):
            index = np.flatnonzero(names == name).astype(np.int32)
            grey = name in _GREY_NAMES
            colour = _NOISE_COLOUR if grey else _PALETTE[number % len(_PALETTE)]
            traces.append(
                _trace(
                    n_dims,
                    coords,
                    index,
                    mode="markers",
                    name=name,
                    hovertemplate=hover,
                    marker=dict(size=size, color=colour, opacity=0.55 if grey else 0.8),
                )
            )
    ring = [] if selected is None else [int(selected)]
    traces.append(
        _trace(
            n_dims,
            coords,
            np.asarray(ring, dtype=np.int32),
            mode="markers",
            name=HIGHLIGHT_NAME,
            showlegend=False,
            hoverinfo="skip",
            marker=dict(
                size=size + 12 if n_dims == 2 else size + 6,
                # Open symbols are stroked in the marker colour (marker.line is ignored).
                color="black",
                symbol="circle-open",
                line=dict(width=2.5),
            ),
        )
    )
    layout = dict(
        template=_template(),
        title=dict(text=title, x=0.01, font=dict(size=14)),
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(title=dict(text=color_name), itemsizing="constant"),
        uirevision=uirevision,
        # "event" only: a click opens the instance panel without replacing a box selection.
        clickmode="event",
        hovermode="closest",
        dragmode="zoom" if n_dims == 2 else "orbit",
    )
    if n_dims == 2:
        layout.update(xaxis=dict(zeroline=False), yaxis=dict(zeroline=False))
    else:
        # The camera stands back far enough that the cube stays inside the plot at every
        # angle (plotly's default eye, 1.25 on each axis, crops its corners when the cube is
        # turned), and tick labels, which say nothing about a projection, take no room.
        axis = dict(showticklabels=False, title=dict(text=""), showspikes=False)
        layout.update(
            scene=dict(
                aspectmode="cube",
                camera=dict(eye=dict(x=1.6, y=1.6, z=1.1)),
                xaxis=axis,
                yaxis=axis,
                zaxis=axis,
            )
        )
    return {"data": traces, "layout": layout}


def ring_point(coords, index):
    """What the page needs to move the selection ring: ``{"index": i, "point": [x, y(, z)]}``."""
    index = int(index)
    return {"index": index, "point": [float(v) for v in coords[index]]}
