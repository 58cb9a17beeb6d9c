"""Imported by the render fork server: a render process's first-render costs, paid once.

A fork server runs each module of its preload list once, before it forks render
processes (`flows.render_pool.start_forkserver`); importing this module is its warm-up.
Forked processes then start with WeasyPrint's font configuration built and what every
report loader imports (their charts import matplotlib: 0.4 s of a 0.8 s first render,
measured); each process still loads the catalog itself, so specs and templates are
read from disk as they are now. Nothing here may fail the server: what cannot be warmed
up is done by the first render instead, as in a spawned process.

Source data is not read here: every forked process would carry every report's tables
in its address space, which counts against its memory cap (RLIMIT_AS).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def warm_up() -> None:
    from reports import pdf
    from reports.definitions import default_catalog

    try:
        pdf.warm_up()
    except Exception as error:  # a missing font library shows in the first render
        log.warning("render preload: fonts not warmed up: %s", error)
    catalog = default_catalog()
    for name in catalog.names():
        try:
            catalog.get(name)  # imports its loader, and what the loader imports
        except Exception as error:  # reported by the render that needs it, with its name
            log.warning("render preload: %s not warmed up: %s", name, error)


warm_up()
