"""Lay out the gallery's sources: the examples/ scripts plus the gallery's header page.

sphinx-gallery needs a ``GALLERY_HEADER.rst`` inside the folder of examples it builds. The
examples belong to the estimators' authors and the docs keep out of that folder, so the build
gathers a folder of its own (``docs/_gallery_src``, ignored by git): the header from
``docs/_gallery_header.txt``, a note listing the examples the docs skip and why, and a link
to each script in ``examples/`` (a copy where links are not supported).
"""

import os
import resource
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
_cpu_at_start = {}


def stage_examples(examples_dir, stage_dir, header_file, skipped, gallery_dir):
    """Fill ``stage_dir`` with the gallery header and links to the example scripts.

    Parameters
    ----------
    examples_dir, stage_dir, header_file : path-like
    skipped : dict of str to str
        Example file names that are not run nor shown, with the reason printed in the gallery.
    gallery_dir : path-like
        Where sphinx-gallery writes its pages; pages of examples that are no longer staged
        (skipped, renamed or removed) are deleted there, so no orphan page is left behind.

    Returns
    -------
    names : list of str
        The example scripts staged.
    """
    examples_dir, stage_dir = Path(examples_dir), Path(stage_dir)
    stage_dir.mkdir(exist_ok=True)
    found = sorted(path.name for path in examples_dir.glob("*.py"))
    scripts = [name for name in found if name not in skipped]
    for path in stage_dir.iterdir():
        if path.name != "GALLERY_HEADER.rst" and path.name not in scripts:
            path.unlink()
    for name in scripts:
        target = stage_dir / name
        source = (examples_dir / name).resolve()
        if target.is_symlink() and target.resolve() == source:
            continue
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            target.symlink_to(os.path.relpath(source, stage_dir))
        except OSError:
            shutil.copy2(source, target)
    _remove_stale_pages(Path(gallery_dir), {Path(name).stem for name in scripts})

    header = Path(header_file).read_text(encoding="utf-8").rstrip() + "\n"
    present = {name: reason for name, reason in skipped.items() if name in found}
    if present:
        header += (
            "\n.. note::\n\n   These examples are in ``examples/`` but are not run or shown "
            "here:\n\n"
        )
        header += "".join(f"   - ``{name}``: {reason}\n" for name, reason in present.items())
    target = stage_dir / "GALLERY_HEADER.rst"
    if not target.exists() or target.read_text(encoding="utf-8") != header:
        target.write_text(header, encoding="utf-8")
    return scripts


def _remove_stale_pages(gallery_dir, stems):
    """Delete sphinx-gallery's outputs for examples whose stem is not in ``stems``."""
    if not gallery_dir.is_dir():
        return
    for path in gallery_dir.glob("plot_*"):
        stem = path.name.split(".")[0]
        if stem not in stems:
            path.unlink()
    for path in gallery_dir.glob("images/**/sphx_glr_plot_*"):
        if not any(path.name.startswith(f"sphx_glr_{stem}_") for stem in stems):
            path.unlink()


def _cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the build, torch's too
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished worker processes
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def report_cpu_time(gallery_conf, fname, when):
    """Log the CPU time each example takes (a sphinx-gallery ``reset_modules`` hook).

    sphinx-gallery reports wall-clock time, which on a shared machine says more about the
    neighbours than about the example. CPU seconds divided by the cores an example keeps busy
    (about 2 for torch on 2 cores) estimate its time on a machine of its own.
    """
    if fname is None:
        return
    if when == "before":
        _cpu_at_start[fname] = _cpu_seconds()
    elif fname in _cpu_at_start:
        seconds = _cpu_seconds() - _cpu_at_start.pop(fname)
        logger.info(f"[gallery] {Path(fname).name}: {seconds:.0f} s of CPU time")
