"""Write the API reference's autosummary lists from the names that import in this checkout.

DESIGN.md fixes skastro's public names, but the package is built in parallel and a name may be
promised before its module lands. A hand-written ``.. autosummary::`` entry for a name that
does not import fails the build (and ``-W`` makes every warning fatal), so ``api.rst``
includes ``api_generated.rst``, which this extension writes before autosummary generates its
stub pages: one section per public module, listing the contract's names that import, then any
other name the module exports in ``__all__``. Contract names that do not import are listed on
the page as "not yet available" instead, and printed at the start of the build.
"""

import importlib
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

GENERATED = "api_generated.rst"

# (title, module whose names are listed, one-line introduction, the DESIGN.md contract names).
# Names are documented under the module they are imported from (``skastro.ConvAutoencoder``).
SECTIONS = [
    (
        "Deep estimators",
        "skastro",
        "scikit-learn transformers built on skorch: ``fit`` on images, ``transform`` to "
        "latent vectors. See :doc:`user_guide/methods`.",
        [
            "ConvAutoencoder",
            "EquivariantAutoencoder",
            "ContrastiveDenoiser",
            "VICRegEmbedder",
            "VariationalAutoencoder",
            "CondVAEClassifier",
            "HypercolumnSegmenter",
        ],
    ),
    (
        "Ensembles, outliers, scaling and star-galaxy separation",
        "skastro",
        "Estimators that wrap, follow or precede the deep estimators in a pipeline, and the "
        "label-free star-galaxy classifier.",
        [
            "StarGalaxyClassifier",
            "KFoldEnsemble",
            "FaintCalibratedClassifier",
            "KNNOutlierDetector",
            "ImageScaler",
            "PeakScaler",
        ],
    ),
    (
        "Data sets and loaders",
        "skastro.datasets",
        "Synthetic generators (``make_*``) and loaders of the file formats astronomers use "
        "(``load_*``). See :doc:`user_guide/data`.",
        [
            "make_disks",
            "make_galaxies",
            "make_star_galaxy",
            "load_fits",
            "load_sdss_npy",
            "load_image_folder",
            "load_hdf5",
            "load_hubble_cutouts",
        ],
    ),
    (
        "Classic image features",
        "skastro.features",
        "Non-deep baselines as scikit-learn transformers. See :doc:`user_guide/features`.",
        [
            "RadialProfile",
            "DifferenceOfGaussians",
            "FourierLaplacian",
            "AxisymmetricResidual",
            "SoftThreshold",
            "BlobCounter",
        ],
    ),
    (
        "Photometry",
        "skastro.photometry",
        "Sky noise, aperture signal-to-noise and flux fractions of centred cutouts.",
        ["sky_noise", "aperture_snr", "flux_fractions"],
    ),
    (
        "Metrics and scorers",
        "skastro.metrics",
        "Scorers for ``GridSearchCV`` and image-quality metrics. See "
        ":doc:`user_guide/model_selection`.",
        [
            "silhouette_scorer",
            "dbcv_scorer",
            "auc_scorer",
            "make_clustering_scorer",
            "reconstruction_mse",
            "ssim",
            "ms_ssim",
            "equivariance_error",
        ],
    ),
    (
        "Plotting",
        "skastro.plotting",
        "matplotlib figures; each function takes ``ax=None`` (or ``fig=None``) and returns it.",
        [
            "plot_embedding",
            "plot_reconstructions",
            "plot_cluster_examples",
            "plot_history",
            "plot_roc",
        ],
    ),
    (
        "Scale-out",
        "skastro.distributed",
        "dask and FAISS: estimators on dask arrays, embedding and clustering millions of "
        "cutouts on a cluster. Needs the ``distributed`` extra. See :doc:`user_guide/millions`.",
        [
            "map_estimator",
            "embed_to_parquet",
            "cluster_embeddings",
            "open_embeddings",
            "connect",
        ],
    ),
    (
        "Loss terms",
        "skastro.losses",
        "The loss terms the deep estimators combine, one family per module (torch only), for "
        "those who build their own models.",
        [],
    ),
    (
        "Augmentations",
        "skastro.augment",
        "Batched torch augmentations (exact symmetries, kornia affine warps, views, noise).",
        [],
    ),
    (
        "Latent space explorer",
        "skastro.explorer",
        "An interactive web app and a shareable HTML export. See :doc:`user_guide/explorer`.",
        ["Explorer"],
    ),
    (
        "Saving and loading",
        "skastro.serialization",
        "Pickle-free model folders. ``skastro.load`` is the same function as "
        "``skastro.serialization.load``. See :doc:`user_guide/saving`.",
        ["save", "load"],
    ),
    (
        "Exceptions",
        "skastro.exceptions",
        "Errors users can catch, one per kind of failure.",
        ["DataLoadError", "NonFiniteLossError", "ModelFormatError"],
    ),
]


# Public names that live outside their section's module, listed by full path until the module
# re-exports them (then the short name is listed instead, once).
ALSO = {"Plotting": ["skastro.plotting.plot_retrieval"]}


def _importable(module, name):
    """The object ``module.name``, or None (with the reason) when it does not import."""
    try:
        return getattr(importlib.import_module(module), name), None
    except Exception as exc:  # any failure means "not available in this checkout"
        return None, f"{type(exc).__name__}: {exc}"


def _documentable(obj):
    # constants (format names, version numbers) are described in prose, not as API entries
    return callable(obj)


def collect():
    """Return ``[(title, module, intro, names)]`` of importable names, and the missing ones."""
    sections, missing = [], []
    for title, module, intro, contract in SECTIONS:
        names = []
        for name in contract:
            obj, reason = _importable(module, name)
            if obj is None:
                missing.append((f"{module}.{name}", reason))
            else:
                names.append(name)
        try:
            exported = list(getattr(importlib.import_module(module), "__all__", []))
        except Exception:
            exported = []
        if module == "skastro":
            exported = []  # the top-level names are split over two sections by hand
        for name in exported:
            obj, _ = _importable(module, name)
            if name not in names and obj is not None and _documentable(obj):
                names.append(name)
        for full_name in ALSO.get(title, []):
            home, _, name = full_name.rpartition(".")
            if name not in names and _importable(home, name)[0] is not None:
                names.append(full_name)
        sections.append((title, module, intro, names))
    return sections, missing


def render(sections, missing):
    """The reStructuredText included by ``api.rst``."""
    lines = [".. This file is written by docs/_ext/skastro_api.py at every build; do not edit.", ""]
    declared = set()
    for title, module, intro, names in sections:
        lines += [title, "-" * len(title), "", intro, ""]
        if not names:
            lines += ["Nothing from this module imports in this build yet.", ""]
            continue
        # the first section of a module declares it, so :mod:`skastro.metrics` links here;
        # a second declaration would be a duplicate-object warning
        directive = "currentmodule" if module in declared else "module"
        declared.add(module)
        lines += [
            f".. {directive}:: {module}",
            "",
            ".. autosummary::",
            "   :toctree: generated",
            "   :nosignatures:",
            "",
        ]
        lines += [f"   {name}" for name in names]
        lines.append("")
    if missing:
        lines += [
            "Not yet available",
            "-----------------",
            "",
            "These names are part of skastro's public contract but do not import in the "
            "checkout this site was built from:",
            "",
        ]
        lines += [f"- ``{name}``" for name, _ in missing]
        lines.append("")
    return "\n".join(lines)


def write_api_list(app, config):
    sections, missing = collect()
    target = Path(app.srcdir) / GENERATED
    text = render(sections, missing)
    # rewrite only on change, so an unchanged API does not force Sphinx to re-read api.rst
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    for name, reason in missing:
        logger.info(f"[skastro_api] not in the API reference (does not import): {name} ({reason})")
    app.config.skastro_api_missing = [name for name, _ in missing]


def setup(app):
    app.add_config_value("skastro_api_missing", [], "env")
    # before autosummary's own builder-inited handler reads the file to generate stub pages
    app.connect("config-inited", write_api_list)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
