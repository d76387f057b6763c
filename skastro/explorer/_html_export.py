"""One self-contained HTML file: the scatter, plotly.js and hover thumbnails, no server."""

import json
import os

import numpy as np

from skastro.explorer._plotlyjs import bundle_source

# Shows the hovered point's thumbnail beside the cursor; the thumbnails are data URIs in a
# JSON block, keyed by point index (the traces' customdata). Text goes in via textContent,
# so an id cannot inject markup. It runs right after the plot is created, so the page puts
# the JSON blocks and the tooltip before the plot.
_HOVER_SCRIPT = """
(function () {
  var gd = document.getElementById('{plot_id}');
  var thumbs = JSON.parse(document.getElementById('skastro-thumbnails').textContent);
  var ids = JSON.parse(document.getElementById('skastro-ids').textContent);
  var colour = JSON.parse(document.getElementById('{plot_id}-colour').textContent);
  var tip = document.getElementById('skastro-tip');
  var img = tip.querySelector('img'), caption = tip.querySelector('div');
  var lastX = 0, lastY = 0;
  document.addEventListener('mousemove', function (e) { lastX = e.clientX; lastY = e.clientY; });
  gd.on('plotly_hover', function (ev) {
    var p = ev.points[0], i = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
    if (i === undefined || i === null) return;
    var src = thumbs[String(i)];
    img.style.display = src ? 'block' : 'none';
    if (src) img.src = src;
    // the id, then what the point is coloured by: its category, or its value
    var text = String(ids[i]);
    if (colour.values) {
      var v = colour.values[i];
      text += '\\n' + colour.name + ' = ' + (v === null ? 'missing' : v);
    } else if (colour.kind !== 'none' && p.data.name) {
      text += '\\n' + (colour.kind === 'cluster' ? '' : colour.name + ': ') + p.data.name;
    }
    caption.textContent = text;
    var x = ev.event && ev.event.clientX !== undefined ? ev.event.clientX : lastX;
    var y = ev.event && ev.event.clientY !== undefined ? ev.event.clientY : lastY;
    tip.style.left = Math.min(x + 16, window.innerWidth - 140) + 'px';
    tip.style.top = Math.min(y + 16, window.innerHeight - 170) + 'px';
    tip.style.display = 'block';
  });
  gd.on('plotly_unhover', function () { tip.style.display = 'none'; });
})();
"""

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; }}
#skastro-header {{ padding: 8px 14px; font-size: 13px; color: #444; }}
#skastro-tip {{ position: fixed; display: none; z-index: 10; background: #fff; padding: 4px;
               border: 1px solid #999; border-radius: 4px; box-shadow: 0 2px 6px rgba(0,0,0,.3);
               pointer-events: none; font-size: 11px; max-width: 130px; white-space: pre-line;
               overflow-wrap: anywhere; }}
#skastro-plots {{ display: grid; grid-template-columns: repeat({columns}, minmax(0, 1fr)); }}
#skastro-tip img {{ width: 120px; height: 120px; object-fit: contain; background: #000;
                   image-rendering: pixelated; }}
</style>
</head>
<body>
<div id="skastro-header">{header}</div>
<div id="skastro-tip"><img alt=""><div></div></div>
<script type="application/json" id="skastro-thumbnails">{thumbnails}</script>
<script type="application/json" id="skastro-ids">{ids}</script>
{plotlyjs}
<div id="skastro-plots">
{plots}
</div>
</body>
</html>
"""


def _json_for_script(value):
    # "</script>" inside a JSON block would end it early; "<\\/" is the same string in JSON.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _colour_info(explorer, view, color_by):
    """What the hover card says about the colouring: its kind, name and, for a continuous
    colouring, each point's value (as shown, at 4 significant digits)."""
    color_by = explorer.default_color(view) if color_by is None else color_by
    values, kind, name = explorer.color_values(view, color_by)
    info = {"kind": kind, "name": name}
    if kind == "continuous":
        import pandas as pd

        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        info["values"] = [float(f"{v:.4g}") if np.isfinite(v) else None for v in numbers]
    return info


def write_html(
    explorer,
    path,
    *,
    views=None,
    color_by=None,
    thumbnail_size=48,
    max_thumbnails=10000,
    stretch="asinh",
    band=None,
):
    """Write views of ``explorer`` to ``path``; see :meth:`Explorer.save_html`."""
    import html as html_text

    import plotly.io as pio

    views = [explorer.view] if views is None else list(views)
    if not views:
        raise ValueError("views must hold at least one view")
    n_images = len(explorer)
    if max_thumbnails is None or max_thumbnails >= n_images:
        with_thumbnail = np.arange(n_images)
    else:
        rng = np.random.default_rng(explorer.random_state)
        with_thumbnail = np.sort(rng.choice(n_images, size=int(max_thumbnails), replace=False))
    thumbnails = {
        str(int(i)): explorer._thumbnails.data_uri(
            int(i), stretch=stretch, band=band, size=thumbnail_size
        )
        for i in with_thumbnail
    }
    source = bundle_source()
    plots = []
    for number, view in enumerate(views):
        plot_id = "skastro-scatter" if number == 0 else f"skastro-scatter-{number}"
        figure = explorer.figure(view, color_by=color_by)
        figure["layout"]["autosize"] = True
        plot = pio.to_html(
            figure,
            validate=False,
            # Embedded, not from a CDN: the file must open offline.
            include_plotlyjs=source is None and number == 0,
            full_html=False,
            div_id=plot_id,
            default_width="100%",
            default_height="92vh",
            config={
                "displaylogo": False,
                "scrollZoom": True,
                "toImageButtonOptions": {"format": "png", "filename": "skastro-explorer"},
            },
            post_script=_HOVER_SCRIPT.replace("{plot_id}", plot_id),
        )
        colour = _json_for_script(_colour_info(explorer, view, color_by))
        plots.append(
            f'<script type="application/json" id="{plot_id}-colour">{colour}</script>\n'
            f"<div>{plot}</div>"
        )
    described = " | ".join(view.spec.describe() for view in views)
    header = f"skastro explorer · {described} · {n_images} images"
    if len(with_thumbnail) < n_images:
        header += f" (hover thumbnails for a random {len(with_thumbnail)} of them)"
    page = _PAGE.format(
        title=html_text.escape(f"skastro explorer: {described}"),
        header=html_text.escape(header),
        # A bundle holds no "</script>" (checked by the tests), so it can go in as it is.
        plotlyjs="" if source is None else f"<script>{source.decode('utf-8')}</script>",
        plots="\n".join(plots),
        columns=min(len(views), 2),
        thumbnails=_json_for_script(thumbnails),
        ids=_json_for_script(explorer.ids.tolist()),
    )
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return path
