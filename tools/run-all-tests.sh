#!/bin/bash
# Install everything and run the whole fixtures-daemons suite, on a fresh
# Debian or Ubuntu machine, as root or as a user with sudo:
#
#     tools/run-all-tests.sh
#
# What it does, in order (every step runs even when an earlier one failed;
# a summary and the exit status tell which failed):
#
#   apt-update     apt-get update
#   apt-base       python3-venv, python3-dev, git: what the next steps need
#   workdir        a fresh $WORK, outside /root and outside the checkout, so
#                  that an unprivileged user can read it
#   venv           a virtualenv from /usr/bin/python3, with bindep in it
#   bindep         the Debian packages `bindep -b test` says are missing
#                  (the daemons themselves)
#   copy           the source tree into $WORK/src (with .git, for pbr)
#   pip-install    requirements, test requirements, doc requirements, the
#                  linters, and the package itself (editable)
#   ci-user        the unprivileged user of the second test pass
#   ruff-check, ruff-format, mypy     the pep8 checks (as `tox -e pep8`)
#   docs           sphinx-build -W (as `tox -e docs`)
#   readme-main-job  the README's one-line try-out: psql through
#                  `fixtures-daemons run postgresql`
#   tests-root     the suite as root, under tests.leakcheck
#   tests-nonroot  the suite again as the unprivileged user
#   pytest-root, pytest-nonroot   tools/run-pytest-suites.sh: the pytest
#                  plugin's and the compat plugins' tests (pytest with
#                  pytest-xdist, -n 4), under tests.leakcheck
#   examples-root, examples-nonroot   examples/run-all-ways.sh: the example
#                  project's suite the three ways (per class, testresources,
#                  one daemon per run), as root and as the unprivileged user
#
# The last line it prints is `tests: N passed, N failed`, the totals of the
# stestr and pytest passes; CI reads it.
#
# Environment:
#   FIXTURES_DAEMONS_CI_DIR            the work dir (default
#                                      /tmp/fixtures-daemons-ci; wiped and
#                                      recreated on every run)
#   FIXTURES_DAEMONS_CI_USER           the unprivileged user (default fxd-ci)
#   FIXTURES_DAEMONS_CI_TEST_TIMEOUT   seconds one test pass may take
#                                      (default 1500)

# The step functions are called through run_step.
# shellcheck disable=SC2329

set -u
set -o pipefail
umask 022
exec </dev/null # never wait for input, whoever runs us

# -- where things are ---------------------------------------------------------

# The checkout: the parent of this script's directory, whatever the cwd.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO" || exit 1

WORK=${FIXTURES_DAEMONS_CI_DIR:-/tmp/fixtures-daemons-ci}
CI_USER=${FIXTURES_DAEMONS_CI_USER:-fxd-ci}
CI_HOME=/home/$CI_USER
TEST_TIMEOUT=${FIXTURES_DAEMONS_CI_TEST_TIMEOUT:-1500}

# The work dir is wiped on every run: refuse anything that could hurt.
case "$WORK" in
    /*) WORK=$(realpath -m "$WORK") ;;
    *) echo "run-all-tests: FIXTURES_DAEMONS_CI_DIR must be absolute: $WORK" >&2; exit 2 ;;
esac
case "$WORK/" in
    / | /tmp/ | /home/ | /root/* | /usr/* | /etc/* | /var/ | "$REPO"/*)
        echo "run-all-tests: refusing to use $WORK as the work dir (it is wiped)" >&2
        exit 2
        ;;
esac
case "$REPO/" in
    "$WORK"/*)
        echo "run-all-tests: the checkout must not be inside the work dir $WORK" >&2
        exit 2
        ;;
esac
VENV=$WORK/venv # the virtualenv every tool runs from
SRC=$WORK/src   # the copy of the checkout that is installed and tested
LOGS=$WORK/logs

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# What root's test pass and the tools see: the venv first, never a Python of
# root's own (the default python3 here may live under /root).
ROOT_PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Privileged steps: directly as root, else through sudo.
if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
else
    if ! command -v sudo >/dev/null 2>&1; then
        echo "run-all-tests: run this as root, or install sudo and run it as a sudoer" >&2
        exit 2
    fi
    as_root() { sudo "$@"; }
fi

# -- step bookkeeping ---------------------------------------------------------

STEP_NAMES=()
STEP_RESULTS=()
STEP_TIMES=()
FAILED=0

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run_step NAME FUNCTION: run FUNCTION in a subshell with `set -e` (so its
# first failing command fails the step), time it and record its status.
run_step() {
    local name=$1 start rc
    shift
    echo
    echo "==== [$name] $(date '+%H:%M:%S')"
    start=$(now_ms)
    (
        set -e
        "$@"
    )
    rc=$?
    local elapsed=$(($(now_ms) - start))
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$(printf '%d.%01d s' $((elapsed / 1000)) $((elapsed % 1000 / 100)))")
    if [ "$rc" -eq 0 ]; then
        STEP_RESULTS+=("ok")
    else
        STEP_RESULTS+=("FAILED (exit $rc)")
        FAILED=1
    fi
    echo "==== [$name] exit $rc after ${STEP_TIMES[-1]}"
    return 0
}

# -- the steps ----------------------------------------------------------------

# apt-get through sudo too: sudo drops DEBIAN_FRONTEND from the environment.
apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

apt_update() {
    apt_get update
}

apt_base() {
    # venv and headers for the virtualenv, git for pbr's version,
    # ca-certificates for pip. (useradd and runuser come with every Debian.)
    # --no-upgrade: what is installed already is left as it is.
    apt_get install -y --no-install-recommends --no-upgrade \
        python3-venv python3-dev git ca-certificates
}

make_workdir() {
    as_root rm -rf "$WORK"
    mkdir -p "$WORK" "$LOGS"
    chmod 755 "$WORK" "$LOGS"
}

make_venv() {
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --upgrade pip
    "$VENV/bin/pip" install bindep
}

bindep_packages() {
    # `bindep -b` prints the missing packages, one a line, and exits 1 when
    # there are any; an error also exits 1 but prints none.
    local missing rc=0
    missing=$("$VENV/bin/bindep" -b test) || rc=$?
    if [ -z "$missing" ]; then
        [ "$rc" -eq 0 ] || { echo "bindep failed (exit $rc)" >&2; return 1; }
        echo "bindep: every package of the test profile is installed"
        return 0
    fi
    echo "bindep: installing: ${missing//$'\n'/ }"
    rc=0
    # Do not let the packages start the system's own copies of the daemons
    # (the tests start their own), unless the machine already has a policy.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        made_policy=1
    fi
    # shellcheck disable=SC2086  # one package a word
    apt_get install -y $missing || rc=$?
    [ "$made_policy" -eq 0 ] || as_root rm -f "$policy"
    [ "$rc" -eq 0 ] || return "$rc"
    # Check that nothing is missing any more.
    "$VENV/bin/bindep" test
}

copy_source() {
    mkdir -p "$SRC"
    # Everything but what is built or cached; keep .git, which pbr reads for
    # the version. Top-level names are matched anchored, the rest anywhere.
    tar -C "$REPO" -cf - \
        --anchored \
        --exclude=./.tox --exclude=./.stestr --exclude=./.venv --exclude=./venv \
        --exclude=./build --exclude=./dist --exclude=./.eggs --exclude=./cover \
        --exclude=./doc/build --exclude=./.coverage \
        --no-anchored \
        --exclude=__pycache__ --exclude='*.pyc' --exclude=.mypy_cache \
        --exclude=.ruff_cache --exclude=.pytest_cache --exclude='*.egg-info' \
        . | tar -C "$SRC" -xf - --no-same-owner
    du -sh "$SRC"
}

pip_install() {
    cd "$SRC"
    "$VENV/bin/pip" install \
        -r requirements.txt -r test-requirements.txt -r doc/requirements.txt \
        'ruff>=0.6' 'mypy>=1.10' types-psutil \
        -e "$SRC"
    "$VENV/bin/pip" list
}

make_ci_user() {
    if ! id "$CI_USER" >/dev/null 2>&1; then
        as_root useradd --create-home --shell /bin/bash "$CI_USER"
    fi
    as_root mkdir -p "$CI_HOME"
    as_root chown "$CI_USER:" "$CI_HOME"
    id "$CI_USER"
}

ruff_check() { cd "$SRC" && "$VENV/bin/ruff" check fixtures_daemons tests benchmarks examples; }
ruff_format() { cd "$SRC" && "$VENV/bin/ruff" format --check fixtures_daemons tests benchmarks examples; }
run_mypy() { cd "$SRC" && "$VENV/bin/mypy"; }

build_docs() {
    cd "$SRC"
    "$VENV/bin/sphinx-build" -W --keep-going -b html doc/source doc/build/html
}

# The README's main-job line, verbatim: the literal line after the
# ".. main-job" comment. It runs psql against a daemon started by
# `fixtures-daemons run`, in a venv of its own.
readme_main_job() {
    cd "$SRC"
    local line
    line=$(awk '/^\.\. main-job/ { found = 1; next } found && /^    [^ ]/ { sub(/^    /, ""); print; exit }' README.rst)
    [ -n "$line" ] || { echo "no main-job line found in README.rst" >&2; return 1; }
    echo "+ $line"
    as_root env PATH="$ROOT_PATH" bash -c "$line" | tee "$LOGS/main-job.txt"
    grep -qx ' *42' "$LOGS/main-job.txt"
}

# The example project's suite (218 tests on PostgreSQL and Redis), the three
# ways: a daemon per test class, testresources, one daemon per run.
examples_root() {
    cd "$SRC"
    as_root env -u PYTHONPATH PATH="$ROOT_PATH" CI="${CI:-}" SHOP_PYTHON="$VENV/bin/python" \
        examples/run-all-ways.sh
}

examples_nonroot() {
    cd "$SRC"
    local env_vars
    mapfile -t env_vars < <(nonroot_env)
    as_root runuser -u "$CI_USER" -- env -i "${env_vars[@]}" SHOP_PYTHON="$VENV/bin/python" \
        examples/run-all-ways.sh
}

# The test command of both passes (as `tox -e py3`).
TEST_COMMAND=(timeout --kill-after=60 "$TEST_TIMEOUT" python -m tests.leakcheck -- stestr run)

tests_root() {
    cd "$SRC"
    as_root env -u PYTHONPATH -u PYTHONHOME PATH="$ROOT_PATH" VIRTUAL_ENV="$VENV" \
        CI="${CI:-}" "${TEST_COMMAND[@]}"
}

# The variables the unprivileged pass gets: a clean environment, so nothing
# of root's (a PYTHONPATH or TMPDIR under /root, say) leaks into it, but the
# library's own settings pass through.
nonroot_env() {
    local var
    echo HOME="$CI_HOME" USER="$CI_USER" LOGNAME="$CI_USER" SHELL=/bin/bash
    echo PATH="$VENV/bin:/usr/bin:/bin" VIRTUAL_ENV="$VENV" LANG=C.UTF-8 CI="${CI:-}"
    for var in $(compgen -e); do
        case "$var" in
            FIXTURES_DAEMONS_CI_*) ;;
            FIXTURES_DAEMONS_*) echo "$var=${!var}" ;;
        esac
    done
}

# The suites run by pytest (as `tox -e pytest`).
PYTEST_COMMAND=(timeout --kill-after=60 "$TEST_TIMEOUT" tools/run-pytest-suites.sh)

pytest_root() {
    cd "$SRC"
    as_root env -u PYTHONHOME -u PYTHONPATH PATH="$ROOT_PATH" VIRTUAL_ENV="$VENV" \
        CI="${CI:-}" "${PYTEST_COMMAND[@]}" 2>&1 | tee "$LOGS/pytest-root.txt"
}

pytest_nonroot() {
    cd "$SRC"
    as_root chown -R "$CI_USER:" "$SRC" # what the root passes wrote
    local env_vars
    mapfile -t env_vars < <(nonroot_env)
    as_root runuser -u "$CI_USER" -- env -i "${env_vars[@]}" \
        "${PYTEST_COMMAND[@]}" 2>&1 | tee "$LOGS/pytest-nonroot.txt"
}

# count_pytest PASS: add the counts of pytest's summary lines ("== 31
# passed, 1 failed, 2 skipped in 9.1s ==", one per suite) in that pass's
# log to the totals. A step that failed without any failed test counts one.
count_pytest() {
    local pass=$1 out=$LOGS/$1.txt line passed=0 failed=0 n
    while IFS= read -r line; do
        n=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
        passed=$((passed + ${n:-0}))
        n=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
        failed=$((failed + ${n:-0}))
        n=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) errors\{0,1\}.*/\1/p')
        failed=$((failed + ${n:-0}))
    done < <(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$out" 2>/dev/null)
    echo "$pass: $passed passed, $failed failed (from $out)"
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
}

tests_nonroot() {
    cd "$SRC"
    as_root rm -rf .stestr
    as_root chown -R "$CI_USER:" "$SRC"
    local env_vars
    mapfile -t env_vars < <(nonroot_env)
    as_root runuser -u "$CI_USER" -- env -i "${env_vars[@]}" "${TEST_COMMAND[@]}"
}

# count_tests PASS USER: add the passed/failed counts of the last stestr run
# in $SRC to the totals; "stestr last" ends with " - Passed: N" and
# " - Failed: N" lines. A pass that recorded no run counts nothing.
TOTAL_PASSED=0
TOTAL_FAILED=0
count_tests() {
    local pass=$1 user=$2 out=$LOGS/stestr-last-$1.txt passed failed unexpected
    (
        cd "$SRC" || exit 1
        if [ "$user" = root ]; then
            as_root env PATH="$ROOT_PATH" stestr last --suppress-attachments
        else
            as_root runuser -u "$user" -- env -i HOME="$CI_HOME" PATH="$VENV/bin:/usr/bin:/bin" \
                LANG=C.UTF-8 stestr last --suppress-attachments
        fi
    ) >"$out" 2>&1
    passed=$(sed -n 's/^ - Passed: \([0-9]*\)$/\1/p' "$out" | tail -n 1)
    failed=$(sed -n 's/^ - Failed: \([0-9]*\)$/\1/p' "$out" | tail -n 1)
    unexpected=$(sed -n 's/^ - Unexpected Success: \([0-9]*\)$/\1/p' "$out" | tail -n 1)
    passed=${passed:-0} failed=$((${failed:-0} + ${unexpected:-0}))
    echo "$pass: $passed passed, $failed failed (from $out)"
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
}

# -- the run ------------------------------------------------------------------

echo "run-all-tests: checkout $REPO, work dir $WORK, as $(id -un)"

run_step apt-update apt_update
run_step apt-base apt_base
run_step workdir make_workdir
run_step venv make_venv
run_step bindep bindep_packages
run_step copy copy_source

# pbr takes the version from git; without a usable git (not installed, or a
# checkout whose .git is a file pointing elsewhere) it needs PBR_VERSION.
if ! git -C "$SRC" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    export PBR_VERSION=${PBR_VERSION:-0.0.0}
    echo "run-all-tests: git unusable in $SRC, using PBR_VERSION=$PBR_VERSION"
fi

run_step pip-install pip_install
run_step ci-user make_ci_user
run_step ruff-check ruff_check
run_step ruff-format ruff_format
run_step mypy run_mypy
run_step docs build_docs
run_step readme-main-job readme_main_job
run_step tests-root tests_root
count_tests tests-root root
run_step tests-nonroot tests_nonroot
count_tests tests-nonroot "$CI_USER"
run_step pytest-root pytest_root
count_pytest pytest-root
run_step pytest-nonroot pytest_nonroot
count_pytest pytest-nonroot
run_step examples-root examples_root
run_step examples-nonroot examples_nonroot

echo
echo "==== summary (work dir $WORK)"
for i in "${!STEP_NAMES[@]}"; do
    printf '  %-14s %-18s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}"
done
if [ "$FAILED" -ne 0 ]; then
    echo "  => some steps FAILED"
else
    echo "  => all steps passed"
fi
echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$FAILED"
