"""Sphinx configuration of skastro's documentation: user guide, API reference and gallery.

Build it with ``make docs`` (installs the ``docs`` extra, then runs
``sphinx-build -W --keep-going -b html docs docs/_build/html``). Add
``-D plot_gallery=0`` to skip running the examples while editing prose.
"""

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import skastro  # noqa: E402
from gallery_sources import stage_examples  # noqa: E402

# Examples that the gallery does not run or show, with the reason printed on the gallery page.
# Every example should run here in a minute or two on 2 CPU cores; list one only when it
# cannot (and tell its author), e.g. "plot_x.py": "needs 15 minutes on 2 cores".
SKIPPED_EXAMPLES = {}

# -- project -----------------------------------------------------------------------------------
project = "skastro"
author = "the skastro developers"
copyright = "the skastro developers, BSD-3-Clause"  # noqa: A001
release = skastro.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # docs/_ext: the API list from what imports, and intersphinx without network
    "skastro_api",
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
)
sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": "|".join(
        [r"__init__\.py"] + ["/" + re.escape(name) + "$" for name in SKIPPED_EXAMPLES]
    ),
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skastro",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skastro": None},
    "image_scrapers": ("matplotlib",),
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
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "auto_examples/index": []}
html_context = {"default_mode": "light"}
