"""The plotly.js that the explorer's pages load.

``_static/plotly-skastro.min.js`` is plotly.js built with only the traces the explorer draws
(scattergl and scatter3d; see ``_static/build_plotly.sh``). The full 4.8 MB bundle takes
about 2 s of CPU to evaluate in a browser, most of the web app's time to first render; this
one is 2 MB and about a quarter of that. Where the file is missing (a source tree in which
it was not built), the pages fall back to the full bundle of the plotly package.
"""

from pathlib import Path

BUNDLE = Path(__file__).resolve().parent / "_static" / "plotly-skastro.min.js"


def bundle_source():
    """The explorer's plotly.js bundle as bytes, or None when it is not installed.

    Examples
    --------
    >>> source = bundle_source()
    >>> source is None or b"window.Plotly" in source
    True
    """
    return BUNDLE.read_bytes() if BUNDLE.is_file() else None
