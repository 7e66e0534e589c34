#!/bin/bash
# The suites that run under pytest rather than stestr: the pytest plugin's
# own tests, the two compat plugins' and the pytest-postgresql migration
# page's example (each dir has no __init__.py, so
# stestr never collects them). Each runs on its own (their conftests use
# pytest_plugins, which pytest accepts only in a conftest of the paths it
# was given), with pytest-xdist (-n 4), under tests.leakcheck. Run from
# the checkout's top (the tools use `python` from PATH):
#
#     tools/run-pytest-suites.sh [DIR ...]
#
# Exits non-zero when any suite failed; pytest's summary line of each
# suite is in the output ("== N passed ... in Ns ==").
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ $# -gt 0 ] || set -- tests/pytest_plugin tests/pytest_compat_services tests/pytest_compat_xprocess \
    tests/pytest_from_postgresql
status=0
for suite in "$@"; do
    echo "== pytest suite $suite"
    # compat.xprocess keeps its processes' state beside pytest's cache dir
    # by default: a dir of this run's own instead (pytest's cache is off).
    state=$(mktemp -d)
    FIXTURES_DAEMONS_XPROCESS_DIR=$state \
        python -m tests.leakcheck -- python -m pytest -p no:cacheprovider -n 4 "$suite" ||
        status=1
    rm -rf "$state"
done
exit "$status"
