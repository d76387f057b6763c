"""A ``:default:`` role that prints a parameter's default value, read from the code at build time.

The user guide quotes defaults (loss weights, group, number of folds) that their authors tune
while the package evolves. ``:default:`EquivariantAutoencoder.variance_weight``` renders the
value in the class's current signature, e.g. ``1.0``, so the guide cannot fall behind the code;
a class or parameter that no longer exists is a build warning naming it (and ``-W`` fails the
build), which is when the page needs rewriting anyway.

Names are looked up in the ``skastro`` namespace first, then as full dotted paths
(``skastro.features.RadialProfile.n_bins``).
"""

import importlib
import inspect

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _lookup(path):
    """The object at a dotted path: ``skastro.<path>`` first, then ``<path>`` itself."""
    for full in (f"skastro.{path}", path):
        parts = full.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    obj = getattr(obj, attribute)
            except AttributeError:
                break
            return obj
    raise ValueError(f"{path} does not import")


def _resolve(target):
    owner_path, _, parameter = target.rpartition(".")
    if not owner_path:
        raise ValueError("expected Class.parameter")
    signature = inspect.signature(_lookup(owner_path))
    if parameter not in signature.parameters:
        raise ValueError(f"{owner_path} has no parameter {parameter!r}")
    default = signature.parameters[parameter].default
    if default is inspect.Parameter.empty:
        raise ValueError(f"{owner_path}.{parameter} has no default")
    return default


def default_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    try:
        value = _resolve(text.strip())
    except Exception as exc:
        message = inliner.reporter.warning(
            f":default:`{text}`: {exc}; update the page", line=lineno
        )
        problem = inliner.problematic(rawtext, rawtext, message)
        return [problem], [message]
    return [nodes.literal(rawtext, repr(value))], []


def setup(app):
    app.add_role("default", default_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
