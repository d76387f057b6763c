"""Keep intersphinx from failing a warning-free build on a machine without network access.

intersphinx downloads each project's ``objects.inv`` at the start of a build, and a project
whose inventory cannot be fetched is a *warning*, which ``sphinx-build -W`` turns into a
failed build. Developer and CI machines here have no network, so before intersphinx loads its
inventories this extension decides, per project, where the inventory comes from:

1. a local copy ``docs/_intersphinx/<name>.inv``, when there is one (download one on a
   machine with network: ``curl -o docs/_intersphinx/sklearn.inv
   https://scikit-learn.org/stable/objects.inv``); it is the fallback when the site is
   reachable, and the only full inventory offline;
2. the project's site, when it is reachable;
3. without a local copy, a small inventory written from the table in
   ``docs/_ext/fallback_inventories.py``, which lists the external names this site refers to;
   it is tried last, so a build with network uses the real inventory.

A project with none of these is dropped from ``intersphinx_mapping`` with an info message. Its
cross-references (``:class:`sklearn.pipeline.Pipeline```) then render as plain code: Sphinx
warns about unresolved Python references only in nitpicky mode, which this site does not use.

``SKASTRO_DOCS_OFFLINE`` overrides the reachability check: ``1`` never contacts a site
(local copies and the fallback table only), ``0`` always tries every site (a failed download
with no local copy then falls back to the table). Unset, each site is probed with a TCP
connection of a few seconds, all in parallel.
"""

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from fallback_inventories import write_inventory
from sphinx.util import logging

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 3.0


def _offline_setting():
    value = os.environ.get("SKASTRO_DOCS_OFFLINE", "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    return None  # auto


def _reachable(url):
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def choose_inventories(app, config):
    offline = _offline_setting()
    local_dir = Path(app.srcdir) / "_intersphinx"
    mapping = dict(config.intersphinx_mapping)
    urls = {name: entry[0] for name, entry in mapping.items()}
    if offline is None:
        with ThreadPoolExecutor(max_workers=max(len(urls), 1)) as pool:
            online = dict(zip(urls, pool.map(_reachable, urls.values())))
    else:
        online = dict.fromkeys(urls, not offline)

    kept, dropped, fallback_used = {}, [], []
    for name, url in urls.items():
        local = local_dir / f"{name}.inv"
        locations = []
        if online[name]:
            locations.append(None)  # None: <url>/objects.inv
        if local.is_file():
            locations.append(str(local))
        else:
            # last resort, tried only when the locations before it fail
            fallback = write_inventory(name, Path(app.doctreedir) / "intersphinx_fallback")
            if fallback is not None:
                locations.append(str(fallback))
                if not online[name]:
                    fallback_used.append(name)
        if locations:
            kept[name] = (url, tuple(locations))
        else:
            dropped.append(name)
    config.intersphinx_mapping = kept
    if fallback_used:
        logger.info(
            "[offline_intersphinx] no network and no local inventory for %s: using the small "
            "inventories of docs/_ext/fallback_inventories.py",
            ", ".join(sorted(fallback_used)),
        )
    if dropped:
        logger.info(
            "[offline_intersphinx] no network and no local inventory for %s: their "
            "cross-references render as plain code (set SKASTRO_DOCS_OFFLINE=0 to force "
            "downloads, or put <name>.inv files in docs/_intersphinx/)",
            ", ".join(sorted(dropped)),
        )


def setup(app):
    # before sphinx.ext.intersphinx normalises the mapping (its handler runs at priority 800)
    app.connect("config-inited", choose_inventories, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
