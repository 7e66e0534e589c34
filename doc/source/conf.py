"""Sphinx configuration of the fixtures-daemons documentation.

Build it with ``tox -e docs``, or::

    sphinx-build -W --keep-going -b html doc/source doc/build/html

Warnings are errors (``-W``): fix them, do not silence them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys

# Import the package from this checkout when it is not installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

# -- Project -------------------------------------------------------------------

project = "fixtures-daemons"
author = "The fixtures-daemons developers"
copyright = "the fixtures-daemons developers"
try:
    release = importlib.metadata.version("fixtures-daemons")
except importlib.metadata.PackageNotFoundError:
    release = ""
version = release

# -- General -------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",  # docstrings use :param: and :ivar: fields: no napoleon
    "sphinx.ext.viewcode",
]
# No intersphinx: the docs build without network access.

master_doc = "index"
exclude_patterns: list[str] = []
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}

# -- HTML ----------------------------------------------------------------------

html_theme = "alabaster"
html_theme_options = {
    "description": "Real, throw-away daemons as test fixtures",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []

# -- The daemon pages ----------------------------------------------------------
#
# daemons/index.rst lists every page in daemons/ with a ``:glob:`` toctree, so
# a new daemon's page appears without editing anything. A glob that matches
# nothing is a warning, and warnings are errors: until the first daemon page
# exists, the toctree is replaced by a sentence saying so.

_DAEMONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemons")


def _has_daemon_pages() -> bool:
    try:
        names = os.listdir(_DAEMONS_DIR)
    except OSError:
        return False
    return any(name.endswith(".rst") and name != "index.rst" for name in names)


def _daemon_index_without_pages(app: object, docname: str, source: list[str]) -> None:
    if docname != "daemons/index" or _has_daemon_pages():
        return
    source[0] = re.sub(
        r"^\.\. toctree::\n(?:[ \t]+.*\n|[ \t]*\n)*",
        "*No daemon has its page yet.*\n\n",
        source[0],
        flags=re.MULTILINE,
    )


# -- The API reference ---------------------------------------------------------
#
# reference/api.rst lists the public names by topic, one directive each,
# except the daemons: the comment ``.. daemon-classes`` there is replaced by
# an autoclass of every daemon fixture that fixtures_daemons exports (a
# DaemonFixture subclass with a daemon_name) and of its resource, so adding
# a daemon needs no edit of that page. Any other name added to
# fixtures_daemons.__all__ and not to the page is a warning (so an error),
# not an undocumented name.


def _api_daemon_classes(app: object, docname: str, source: list[str]) -> None:
    if docname != "reference/api":
        return
    import fixtures_daemons

    exported = [getattr(fixtures_daemons, name) for name in fixtures_daemons.__all__]
    classes = [value for value in exported if isinstance(value, type)]
    directives = []
    for fixture in sorted(
        (
            cls
            for cls in classes
            if issubclass(cls, fixtures_daemons.DaemonFixture) and cls.__dict__.get("daemon_name")
        ),
        key=lambda cls: cls.daemon_name,
    ):
        directives.append(".. autoclass:: fixtures_daemons.%s\n   :members:\n" % fixture.__name__)
        for resource in classes:
            if (
                issubclass(resource, fixtures_daemons.DaemonResource)
                and resource.fixture_class is fixture
            ):
                directives.append(".. autoclass:: fixtures_daemons.%s\n" % resource.__name__)
    source[0] = source[0].replace(".. daemon-classes\n", "\n".join(directives), 1)


def _check_api_reference(app: object, docname: str, source: list[str]) -> None:
    if docname != "reference/api":
        return
    import fixtures_daemons
    from sphinx.util import logging

    missing = [
        name
        for name in fixtures_daemons.__all__
        if not re.search(r"\bfixtures_daemons\.%s\b" % re.escape(name), source[0])
    ]
    if missing:
        logging.getLogger(__name__).warning(
            "fixtures_daemons.__all__ exports %s, which reference/api.rst does not document",
            ", ".join(missing),
            location="reference/api",
        )


def setup(app: object) -> None:
    app.connect("source-read", _daemon_index_without_pages)  # type: ignore[attr-defined]
    app.connect("source-read", _api_daemon_classes)  # type: ignore[attr-defined]
    app.connect("source-read", _check_api_reference)  # type: ignore[attr-defined]
