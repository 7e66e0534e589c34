"""A failing test's report sections: what its daemons logged meanwhile.

When a test starts, the size of every live daemon's log is noted; when it
fails, each daemon it used adds a section to its report with the last
lines its log got since then (the whole log of a daemon started for the
test), as testtools attaches a fixture's log as a detail.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

__all__ = ["Used", "USED_KEY", "OFFSETS_KEY", "log_size", "read_since", "section"]

#: At most this much of a log is read for a report.
MAX_BYTES = 65536


@dataclasses.dataclass
class Used:
    """A daemon a test used: its name, its log and what the test owned
    in it (a URL, for the report)."""

    daemon: str
    log_path: str
    owned: str = ""
    kept: bool = False


#: The daemons an item used (set by the plugin's fixtures).
USED_KEY = pytest.StashKey[list[Used]]()
#: Log sizes when the item started: path -> bytes.
OFFSETS_KEY = pytest.StashKey[dict[str, int]]()


def log_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def read_since(path: str, offset: int, lines: int) -> str:
    """The last ``lines`` lines written to ``path`` after ``offset`` ("" if
    unreadable: the temp dir of a daemon stopped already)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < offset:  # a new file (a restarted daemon's)
                offset = 0
            start = max(offset, size - MAX_BYTES)
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    if start > offset and text:
        text = text[1:]  # a cut line
    return "\n".join(text[-lines:]) if lines else ""


def section(used: Used, offset: int, lines: int) -> tuple[str, str]:
    """A report section (title, text) for one daemon a failing test used."""
    parts = []
    if used.owned:
        parts.append("%s: %s" % ("kept, not removed" if used.kept else "the test's", used.owned))
    if used.log_path and lines:
        text = read_since(used.log_path, offset, lines)
        parts.append(
            "%s (last %d lines since the test started):\n%s"
            % (used.log_path, lines, text or "(nothing)")
        )
    return ("fixtures-daemons: %s" % used.daemon, "\n".join(parts))
