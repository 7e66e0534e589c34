"""The page's "before" (doc/source/user/from-postgresql.rst), run under
the real pytest-postgresql in a subprocess, with test_stories.py: the
tests the "after" runs pass before the migration too."""

import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(TOP, "doc", "source", "user", "from-postgresql.rst")
#: How long the inner run may take on a loaded machine (a bound, not a timing).
RUN_TIMEOUT = 600.0


def documented_before():
    """The files of the page's "before": each ``.. before: NAME`` comment
    names the code block that follows it."""
    with open(DOC) as f:
        text = f.read()
    pattern = r"^\.\. before: (\S+)\n\n\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)"
    return {
        name: "\n".join(line[4:] for line in block.splitlines()).strip() + "\n"
        for name, block in re.findall(pattern, text, flags=re.MULTILINE)
    }


def test_the_page_has_its_before():
    files = documented_before()
    assert sorted(files) == ["conftest.py"]
    assert "from pytest_postgresql import factories" in files["conftest.py"]


def test_the_before_passes_under_pytest_postgresql(tmp_path):
    pytest.importorskip("pytest_postgresql")
    if os.geteuid() == 0:
        pytest.skip("pytest-postgresql runs pg_ctl, which refuses root")
    for name, text in documented_before().items():
        (tmp_path / name).write_text(text)
    for name in ("test_stories.py", "schema.sql"):
        shutil.copy(os.path.join(HERE, name), tmp_path / name)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FIXTURES_DAEMONS_", "PYTEST_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:fixtures_daemons"]
        + ["-p", "no:xdist", "-q", "--basetemp", str(tmp_path / "basetemp")],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=RUN_TIMEOUT,
    )
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, output[-3000:]
    assert "4 passed" in output, output[-3000:]
