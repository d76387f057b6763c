"""The anomaly gallery and the labelling controls, as plain functions of the explorer.

The gallery shows the images ranked by an anomaly score (the kNN outlier score of the
embedding shown, or any numeric metadata column), most anomalous first. The user marks
images *interesting* or *not interesting* (or gives a class name), from the gallery, from
the instance panel or for a box/lasso selection; every change is saved at once to the labels
CSV, and the gallery is re-ranked by a light model learnt from the labels (see
:mod:`skastro.explorer._ranking`). A small plot shows how the labels moved the ranking.

The Dash callbacks in :mod:`skastro.explorer._app` only unpack their arguments and call
these, so every behaviour is unit-tested without a browser.
"""

import numpy as np

from skastro.explorer._figure import _template
from skastro.explorer._labels import INTERESTING, NOT_INTERESTING, clean_label

# images in the gallery, and the most the "show" box allows
GALLERY_SIZE = 24
MAX_GALLERY_SIZE = 200
GALLERY_IMAGE_SIZE = 96
# points of the rank-change plot: the images in the top this-many before or after
RANK_PLOT_TOP = 200

LABEL_COLOURS = {
    INTERESTING: "#2ca02c",
    NOT_INTERESTING: "#d62728",
    "class": "#9467bd",
    "": "#9a9a9a",
}
# label actions of the buttons: button id -> label given (None removes it)
LABEL_ACTIONS = {
    "label-interesting": INTERESTING,
    "label-not-interesting": NOT_INTERESTING,
    "label-clear": None,
}


def _colour(label):
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    return LABEL_COLOURS["class"]


def apply_label(explorer, indices, label):
    """Label ``indices`` and return the status line shown under the buttons."""
    indices = sorted({int(i) for i in indices if 0 <= int(i) < len(explorer)})
    if not indices:
        return "Nothing to label: click an image or select points first."
    try:
        changed = explorer.set_label(indices, label)
    except ValueError as exc:  # a class name too long
        return f"Not labelled: {exc}"
    except OSError as exc:  # the labels file cannot be written
        return f"Could not save the labels to {explorer.label_file}: {exc.strerror or exc}"
    what = f"image {explorer.ids[indices[0]]}" if len(indices) == 1 else f"{len(indices)} images"
    done = f"Cleared the label of {what}" if label is None else f"Labelled {what} '{label}'"
    if changed < len(indices):
        done += f" ({len(indices) - changed} already were)"
    where = (
        f"; saved to {explorer.label_file.name}"
        if explorer.label_file is not None
        else " (kept in memory: no labels file)"
    )
    return done + where + "."


def label_from_action(action, class_name):
    """The label a button gives: interesting, not interesting, the typed class, or None."""
    if action in ("label-class", "label-class-apply"):
        return clean_label(class_name)
    return LABEL_ACTIONS.get(action)


def _rank_text(ranking, index):
    moved = int(ranking.before[index] - ranking.after[index])
    arrow = f" ↑{moved}" if moved > 0 else f" ↓{-moved}" if moved < 0 else ""
    return f"#{ranking.after[index] + 1}{arrow}"


def gallery_items(explorer, ranking, count, show_labelled, stretch="asinh", band=None):
    """The gallery's cards: the top ``count`` images of ``ranking``.

    Each card holds the thumbnail (a button ``{"type": "gallery", "index": i}`` that opens
    the image in the instance panel), its rank (and how far the labels moved it), its label,
    and two buttons ``{"type": "gallery-label", "index": i, "label": ...}``.
    """
    from dash import html

    labels = explorer.user_labels
    order = ranking.order
    if not show_labelled:
        order = order[labels[order] == ""]
    cards = []
    for index in order[:count]:
        index = int(index)
        label = labels[index]
        cards.append(
            html.Div(
                [
                    html.Button(
                        html.Img(
                            src=explorer._thumbnails.data_uri(
                                index, stretch=stretch, band=band, size=GALLERY_IMAGE_SIZE
                            ),
                            alt=f"image {explorer.ids[index]}",
                        ),
                        id={"type": "gallery", "index": index},
                        className="gallery-image",
                        title=f"id {explorer.ids[index]}: click to show",
                        n_clicks=0,
                    ),
                    html.Div(
                        [
                            html.Span(_rank_text(ranking, index), className="rank"),
                            html.Span(str(explorer.ids[index]), className="gallery-id"),
                        ],
                        className="gallery-caption",
                    ),
                    html.Div(
                        label or "unlabelled",
                        className="badge",
                        style={"background": _colour(label)},
                    ),
                    html.Div(
                        [
                            html.Button(
                                "✓ yes",
                                id={"type": "gallery-label", "index": index, "label": INTERESTING},
                                className="mini yes",
                                title="interesting",
                                n_clicks=0,
                            ),
                            html.Button(
                                "✗ no",
                                id={
                                    "type": "gallery-label",
                                    "index": index,
                                    "label": NOT_INTERESTING,
                                },
                                className="mini no",
                                title="not interesting",
                                n_clicks=0,
                            ),
                        ],
                        className="gallery-buttons",
                    ),
                ],
                className="gallery-card",
                **{"data-index": str(index), "data-label": label},
            )
        )
    if not cards:
        text = "Every image is labelled: tick 'show labelled images' to see them."
        cards = [html.P(text, className="hint")]
    return cards


def ranking_summary(explorer, ranking, rank_name):
    """One line: what ranks the gallery and how many labels it learnt from."""
    counts = explorer._label_store.counts()
    n_classes = sum(v for k, v in counts.items() if k not in (INTERESTING, NOT_INTERESTING))
    text = f"Ranked by {rank_name}"
    if ranking.n_interesting + ranking.n_not_interesting:
        text += (
            f", re-ranked by {ranking.model} from {ranking.n_interesting} interesting and "
            f"{ranking.n_not_interesting} not interesting"
        )
    else:
        text += "; mark images interesting or not to re-rank the rest"
    if n_classes:
        text += f" ({n_classes} with a class name, not used for ranking)"
    return text + "."


def rank_change_figure(explorer, ranking, top=RANK_PLOT_TOP):
    """How the labels moved the ranking: rank by the score alone against rank after
    re-ranking, for the images in the top ``top`` of either, coloured by label."""
    labels = explorer.user_labels
    shown = np.flatnonzero((ranking.before < top) | (ranking.after < top))
    traces = []
    groups = [
        ("unlabelled", labels[shown] == ""),
        ("interesting", labels[shown] == INTERESTING),
        ("not interesting", labels[shown] == NOT_INTERESTING),
        (
            "class name",
            ~np.isin(labels[shown], ["", INTERESTING, NOT_INTERESTING]),
        ),
    ]
    for name, mask in groups:
        if not mask.any():
            continue
        members = shown[mask]
        colour = LABEL_COLOURS[{"unlabelled": "", "class name": "class"}.get(name, name)]
        traces.append(
            dict(
                type="scatter",
                mode="markers",
                name=name,
                x=(ranking.before[members] + 1).tolist(),
                y=(ranking.after[members] + 1).tolist(),
                customdata=members.tolist(),
                text=[str(explorer.ids[i]) for i in members],
                hovertemplate="%{text}: #%{x} → #%{y}<extra></extra>",
                marker=dict(color=colour, size=7 if name != "unlabelled" else 5, opacity=0.85),
            )
        )
    n = len(explorer)
    traces.append(
        dict(
            type="scatter",
            mode="lines",
            x=[1, n],
            y=[1, n],
            name="unchanged",
            hoverinfo="skip",
            line=dict(color="#bbb", dash="dot", width=1),
        )
    )
    axis = dict(type="log", dtick=1, zeroline=False)
    moved_up = int(((ranking.after < ranking.before) & (labels == "")).sum())
    title = (
        "How the labels moved the ranking (above the line: moved up)"
        if ranking.n_interesting + ranking.n_not_interesting
        else "The ranking by the score alone (no labels yet)"
    )
    return {
        "data": traces,
        "layout": dict(
            title=dict(text=title, font=dict(size=12), x=0.01, y=0.98),
            margin=dict(l=48, r=8, t=62, b=36),
            xaxis=dict(title=dict(text="rank by the score alone", standoff=4), **axis),
            yaxis=dict(
                title=dict(text="rank after the labels", standoff=4), autorange="reversed", **axis
            ),
            legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom", font=dict(size=10)),
            hovermode="closest",
            template=_template(),
            meta=dict(moved_up=moved_up),
        ),
    }


def gallery(explorer, view_key, rank_by, options, count, stretch="asinh", band=None):
    """``(cards, rank-change figure, summary)`` of the anomaly panel for a view."""
    from skastro.explorer._callbacks import _number

    view = explorer._view_for(view_key)
    options = options or []
    names = dict(explorer.rank_options())
    rank_by = rank_by if rank_by in names else next(iter(names))
    count = _number(count, GALLERY_SIZE, int, low=1, high=MAX_GALLERY_SIZE)
    ranking = explorer.ranking(rank_by, view.spec.embedding, use_labels="rerank" in options)
    rank_name = names[rank_by]
    if rank_by == "knn":
        rank_name += f" in {view.spec.embedding}"
    cards = gallery_items(explorer, ranking, count, "labelled" in options, stretch, band)
    summary = ranking_summary(explorer, ranking, rank_name)
    return cards, rank_change_figure(explorer, ranking), summary
