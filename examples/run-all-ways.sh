#!/bin/bash
# Run the example shop suite (examples/shop) the three ways, with stestr:
#
#   class    a fresh PostgreSQL and Redis per test class (setUpClass)
#   shared   testresources: each daemon started once per stestr worker
#   attach   one PostgreSQL and one Redis for the whole run, started by
#            `python -m fixtures_daemons run`; every test attaches
#
# then print, for each way, how many tests passed and the wall time, and
# check that nothing was left behind: no daemon temp dir and no process of
# the run. Exits non-zero if a way failed or something leaked.
#
#     examples/run-all-ways.sh                  # concurrency 2
#     CONCURRENCY=1 examples/run-all-ways.sh attach
#
# Needs a Python with the test requirements (stestr, testresources, psycopg,
# redis) and the daemons installed; fixtures_daemons is taken from that
# Python when it is installed there, else from this checkout. The Python is
# $SHOP_PYTHON, else `python` (or `python3`) on PATH. Runs as root (the
# daemons then run as nobody) or as any user; writes nothing into the
# checkout.

set -u
set -o pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
SHOP=$HERE/shop
CONCURRENCY=${CONCURRENCY:-2}
PY=${SHOP_PYTHON:-$(command -v python || command -v python3 || true)}
WAYS=("$@")
[ ${#WAYS[@]} -eq 0 ] && WAYS=(class shared attach)

die() {
    echo "run-all-ways: $*" >&2
    exit 2
}

[ -n "$PY" ] || die "no python on PATH (set SHOP_PYTHON)"
for way in "${WAYS[@]}"; do
    case $way in
        class | shared | attach) ;;
        *) die "unknown way $way (class, shared or attach)" ;;
    esac
done
# (From /: python -c puts the current directory on its path.)
if ! (cd / && "$PY" -c 'import fixtures_daemons') 2>/dev/null; then
    export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
    (cd / && "$PY" -c 'import fixtures_daemons') || die "$PY cannot import fixtures_daemons"
fi
(cd / && "$PY" -c 'import stestr, testresources, psycopg, redis') ||
    die "$PY lacks the test requirements"
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the checkout

# The stestr repositories and logs, and a temp root of our own for the
# daemons' dirs (memory-backed like the default one), so that what this run
# leaves behind is told apart from what other runs on the machine hold.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/run-all-ways.XXXXXX") || die "cannot make a work dir"
BASE_ROOT=$(cd / && "$PY" -c 'from fixtures_daemons.process.tempdirs import default_temp_root as r; print(r())')
TEMP_ROOT=$(mktemp -d "$BASE_ROOT/shop-run.XXXXXX") || die "cannot make a temp root in $BASE_ROOT"
chmod 755 "$TEMP_ROOT" # the daemons' user (nobody, under root) must enter it
# Not exported: only the commands get it, so that the processes carrying it
# in their environment are exactly the run's.
RUN_ENV=(env "FIXTURES_DAEMONS_TMPDIR=$TEMP_ROOT")

cleanup() {
    rm -rf "$WORK"
    rmdir "$TEMP_ROOT" 2>/dev/null || rm -rf "$TEMP_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Processes whose environment names our temp root: daemons, watchdogs,
# test workers. Only the run's own (see RUN_ENV), and none once it is over.
leftovers() {
    "$PY" - "$TEMP_ROOT" <<'EOF'
import os, sys

needle = b"FIXTURES_DAEMONS_TMPDIR=" + sys.argv[1].encode()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/environ" % pid, "rb") as f:
            if needle not in f.read().split(b"\0"):
                continue
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:  # gone, or not ours to read
        continue
    print("  process %s: %s" % (pid, command))
EOF
}

# What the run left: processes (given a few seconds: a watchdog exits once
# it has seen its test process go) and dirs in the temp root.
check_leaks() {
    local left dirs deadline=$((SECONDS + 5))
    while left=$(leftovers) && [ -n "$left" ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.1
    done
    dirs=$(find "$TEMP_ROOT" -mindepth 1 -maxdepth 1 -printf '  left in the temp root: %p\n')
    if [ -n "$left$dirs" ]; then
        [ -z "$left" ] || echo "$left"
        [ -z "$dirs" ] || echo "$dirs"
        return 1
    fi
}

command_for() {
    local stestr=("$PY" -m stestr --repo-url "$WORK/$1" run --concurrency "$CONCURRENCY")
    case $1 in
        class | shared) echo env "SHOP_TESTS=$1" "${stestr[@]@Q}" ;;
        attach)
            echo env SHOP_TESTS=attach "${PY@Q}" -m fixtures_daemons run postgresql -- \
                "${PY@Q}" -m fixtures_daemons run redis -- "${stestr[@]@Q}"
            ;;
    esac
}

failed=0
summary=()
cd "$SHOP" || die "no $SHOP"
for way in "${WAYS[@]}"; do
    mkdir "$WORK/$way"
    log=$WORK/$way.log
    command=$(command_for "$way")
    echo "== $way: $command"
    start=$(date +%s%N)
    eval "${RUN_ENV[*]@Q} $command" >"$log" 2>&1
    status=$?
    elapsed=$((($(date +%s%N) - start) / 1000000))
    passed=$(sed -n 's/^ - Passed: \([0-9]*\)$/\1/p' "$log" | tail -1)
    failures=$(sed -n 's/^ - Failed: \([0-9]*\)$/\1/p' "$log" | tail -1)
    verdict=ok
    if [ "$status" -ne 0 ] || [ -z "$passed" ] || [ "$passed" -eq 0 ]; then
        verdict="FAILED (status $status)"
        tail -n 80 "$log"
    fi
    if ! leaks=$(check_leaks); then
        [ "$verdict" = ok ] && verdict=LEAKED || verdict="$verdict, LEAKED"
        echo "$way left behind:"
        echo "$leaks"
    fi
    [ "$verdict" = ok ] || failed=1
    seconds=$((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))
    line=$(printf '%-7s %5s passed %5s failed  %8s s  %s' "$way" "${passed:-?}" \
        "${failures:-?}" "$seconds" "$verdict")
    echo "$line"
    summary+=("$line")
done

echo
echo "way     tests                     wall time  (concurrency $CONCURRENCY)"
printf '%s\n' "${summary[@]}"
exit $failed
