"""Sphinx configuration of skastro's documentation: user guide, API reference and gallery.

Build it with ``make docs`` (installs the ``docs`` extra, then runs
``sphinx-build -W --keep-going -b html docs docs/_build/html``). Add
``-D plot_gallery=0`` to skip running the examples while editing prose.
"""

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

from gallery_sources import stage_examples  # noqa: E402

import skastro  # noqa: E402

# Examples that the gallery does not run or show, with the reason printed on the gallery page.
# The whole build must stay under 10 minutes on 2 CPU cores: all examples together should need
# no more than about 15 CPU-minutes, 2 to 4 each (the build logs each one's CPU time). List one
# here, as {"plot_name.py": "reason shown in the gallery"}, only when it cannot be made smaller,
# and tell its author. SKASTRO_DOCS_ALL_EXAMPLES=1 runs them all anyway.
SKIPPED_EXAMPLES = {}
if os.environ.get("SKASTRO_DOCS_ALL_EXAMPLES", "").strip().lower() in {"1", "true", "yes"}:
    SKIPPED_EXAMPLES = {}

# -- project -----------------------------------------------------------------------------------
project = "skastro"
author = "the skastro developers"
copyright = "the skastro developers, BSD-3-Clause"
release = skastro.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # docs/_ext: the API list from what imports, :default: values from the code, and
    # intersphinx without network
    "skastro_api",
    "skastro_defaults",
    "offline_intersphinx",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_gallery_src",
    "_intersphinx",
    "api_generated.rst",  # included by api.rst
    "**/sg_execution_times.rst",
    "requirements.txt",
]
root_doc = "index"
default_role = "literal"
nitpicky = False  # external names stay plain code when their inventory is unavailable
suppress_warnings = []

# -- autodoc, autosummary, numpydoc --------------------------------------------------------------
autosummary_generate = ["api_generated.rst"]
autosummary_imported_members = False
autodoc_typehints = "none"  # types are in the numpydoc Parameters sections
autodoc_member_order = "bysource"
add_module_names = False

numpydoc_show_class_members = False  # the class template lists the methods itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- intersphinx -------------------------------------------------------------------------------
# Offline (developer and CI machines here), docs/_ext/offline_intersphinx.py keeps only the
# inventories found in docs/_intersphinx/; see its docstring and SKASTRO_DOCS_OFFLINE.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "escnn": ("https://quva-lab.github.io/escnn/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
    "hdbscan": ("https://hdbscan.readthedocs.io/en/latest/", None),
    "umap": ("https://umap-learn.readthedocs.io/en/latest/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
}
intersphinx_timeout = 10

# -- gallery -----------------------------------------------------------------------------------
stage_examples(
    DOCS.parent / "examples",
    DOCS / "_gallery_src",
    DOCS / "_gallery_header.txt",
    SKIPPED_EXAMPLES,
    gallery_dir=DOCS / "auto_examples",
)
sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skastro",),
    "backreferences_dir": "generated/backreferences",
    "image_scrapers": ("matplotlib",),
    # matplotlib's own reset, and a log line with each example's CPU time
    "reset_modules": ("matplotlib", "gallery_sources.report_cpu_time"),
    "reset_modules_order": "both",
    "remove_config_comments": True,
    "show_memory": False,
    "capture_repr": (),
}
# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skastro {release}"
html_static_path = ["_static"]
html_css_files = ["skastro.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # API pages have long names and their own member list: give them the whole width
    "secondary_sidebar_items": {"generated/*": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "auto_examples/index": []}
html_context = {"default_mode": "light"}


# -- docstring hooks ---------------------------------------------------------------------------
_SHAPE_NAME_RE = re.compile(r"(?<=\w)_(?=[),\]])")
_TYPE_LINE_RE = re.compile(r"^(\s*[\w*][\w*, ]* : )(.+)$")


def _escape_fitted_names_in_types(app, what, name, obj, options, lines):
    """Escape a trailing underscore in numpydoc type lines: ``shape (n, n_neighbors_)``.

    numpydoc passes type fields to reStructuredText as they are, where ``n_neighbors_)`` is a
    reference to a target ``n_neighbors`` (an error). Shapes written with fitted attributes
    are natural in a docstring, so the docs accept them rather than make every author
    remember the rule.
    """
    for i, line in enumerate(lines):
        match = _TYPE_LINE_RE.match(line)
        if match and not line.lstrip().startswith((">>>", "...")):
            lines[i] = match.group(1) + _SHAPE_NAME_RE.sub(r"\\_", match.group(2))


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """scikit-learn adds ``set_<method>_request`` to every estimator; they are its API."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_ADORNMENT_RE = re.compile(r"^([=\-~^\"'`#*+])\1+$")


def _lengthen_gallery_underlines(app, docname, source):
    """Lengthen section underlines that are shorter than their title, in gallery pages only.

    An example's ``# %%`` cells are reStructuredText nobody sees while writing the script, and a
    title one character longer than its underline is a docutils warning that would fail the
    ``-W`` build for a cosmetic slip. Titles with an overline are left alone. The rest of the
    site stays strict.
    """
    if not docname.startswith("auto_examples/"):
        return
    lines = source[0].split("\n")
    for i in range(1, len(lines)):
        title, line = lines[i - 1].rstrip(), lines[i]
        overlined = i >= 2 and _ADORNMENT_RE.match(lines[i - 2])
        if (
            _ADORNMENT_RE.match(line)
            and title
            and not title[0].isspace()
            and not _ADORNMENT_RE.match(title)
            and not overlined
            and len(line) < len(title)
        ):
            lines[i] = line[0] * len(title)
    source[0] = "\n".join(lines)


# Public names re-exported under a second, shorter path: references to the short one link to
# the page of the documented one (autosummary documents each object once).
_ALIASES = {"skastro.load": "skastro.serialization.load"}


def _resolve_aliases(app, env, node, contnode):
    target = _ALIASES.get(node.get("reftarget"))
    if node.get("refdomain") != "py" or target is None:
        return None
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def setup(app):
    app.connect("missing-reference", _resolve_aliases)
    # before numpydoc (priority 500) turns the sections into reStructuredText
    app.connect("autodoc-process-docstring", _escape_fitted_names_in_types, priority=400)
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
    app.connect("source-read", _lengthen_gallery_underlines)
