#!/usr/bin/env bash
# Tests of the CI scripts themselves (ci/test.sh's `ci-selftest` leg): what keeps a hung or
# broken test from holding the run. Each check prints `selftest: ok ...` or fails the script.
#
# - ci/wine-run.sh stops an executable that runs past CI_WINE_BINARY_LIMIT (exit 124, named);
# - it starts an executable again when Wine failed to start it ("wine client error"), at
#   most twice, and returns any other failure as it is, without a second start;
# - ci/test.sh's run_limited kills what a leg left running in its process group (a test's
#   child process would hold the leg's output pipe open), and kills a leg past CI_LEG_LIMIT.
#
# Fake `wine` programs stand in for Wine: nothing here needs Wine.
# shellcheck disable=SC2317 # the `dispatch` stand-ins run through the sourced run_limited
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/ci-selftest.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
failures=0

ok() { echo "selftest: ok: $*"; }
fail() { echo "selftest: FAILED: $*" >&2; failures=$((failures + 1)); }

fake() { # fake NAME BODY: an executable script $TMP/NAME
    printf '#!/usr/bin/env bash\n%s\n' "$2" > "$TMP/$1"
    chmod +x "$TMP/$1"
}

# 1. A hang is stopped at the limit, named, with exit 124.
fake hang 'sleep 30'
start=$(date +%s)
WINE="$TMP/hang" CI_WINE_BINARY_LIMIT=1 bash "$ROOT/ci/wine-run.sh" t.exe >"$TMP/out" 2>"$TMP/err"
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" = 124 ] && [ "$took" -lt 15 ] && grep -q "t.exe ran past 1s" "$TMP/err"; then
    ok "wine-run stops a hung executable at its limit (exit 124 after ${took}s)"
else
    fail "wine-run on a hang: exit $rc after ${took}s; stderr: $(cat "$TMP/err")"
fi

# 2. Wine's start-up fault: started again, and the second start's result is returned.
# shellcheck disable=SC2016 # the fake's own code, expanded when it runs
fake flaky 'n=$(cat "'"$TMP"'/count" 2>/dev/null || echo 0); echo $((n + 1)) > "'"$TMP"'/count"
if [ "$n" = 0 ]; then echo "wine client error:0: recvmsg: Connection reset by peer" >&2; exit 1; fi
echo "ran $*"'
WINE="$TMP/flaky" bash "$ROOT/ci/wine-run.sh" t.exe --x >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$TMP/count")" = 2 ] && grep -q "ran t.exe --x" "$TMP/out" \
    && grep -q "starting it again" "$TMP/err"; then
    ok "wine-run starts an executable again after Wine's start-up fault"
else
    fail "wine-run on Wine's start-up fault: exit $rc, $(cat "$TMP/count") starts; stderr: $(cat "$TMP/err")"
fi

# 3. At most three starts when Wine keeps failing; its exit status is returned.
# shellcheck disable=SC2016
fake broken 'echo x >> "'"$TMP"'/starts"; echo "wine client error:0: recvmsg" >&2; exit 1'
WINE="$TMP/broken" bash "$ROOT/ci/wine-run.sh" t.exe >/dev/null 2>&1
rc=$?
if [ "$rc" = 1 ] && [ "$(wc -l < "$TMP/starts")" = 3 ]; then
    ok "wine-run gives up after three starts"
else
    fail "wine-run on a Wine that never starts: exit $rc after $(wc -l < "$TMP/starts") starts"
fi

# 4. A test failure is not retried.
# shellcheck disable=SC2016
fake failing 'echo x >> "'"$TMP"'/fails"; echo "test a ... FAILED"; exit 101'
WINE="$TMP/failing" bash "$ROOT/ci/wine-run.sh" t.exe >/dev/null 2>&1
rc=$?
if [ "$rc" = 101 ] && [ "$(wc -l < "$TMP/fails")" = 1 ]; then
    ok "wine-run returns a test failure as it is, started once"
else
    fail "wine-run on a failing test: exit $rc after $(wc -l < "$TMP/fails") starts"
fi

# ci/test.sh's driver functions, without running any leg.
# shellcheck disable=SC1091 # not followed: its legs are not this script's code
CI_TEST_SOURCE_ONLY=1 source "$ROOT/ci/test.sh"

# 5. A leg's leftover process is killed: the pipe after the leg closes at once.
dispatch() { (sleep 60) & echo "leg ran"; return 0; }
start=$(date +%s)
( run_limited demo ) 2>"$TMP/err" | cat >"$TMP/out"
took=$(($(date +%s) - start))
if [ "$took" -lt 15 ] && grep -q "leg ran" "$TMP/out" && grep -q "left processes running" "$TMP/err"; then
    ok "run_limited kills what a leg left running (${took}s)"
else
    fail "run_limited with a leftover child: ${took}s; stderr: $(cat "$TMP/err")"
fi

# 6. A leg past the limit is killed and fails.
dispatch() { sleep 60; }
LEG_LIMIT=1
start=$(date +%s)
( run_limited slow ) 2>"$TMP/err" >/dev/null
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" != 0 ] && [ "$took" -lt 20 ] && grep -q "ran past 1s" "$TMP/err"; then
    ok "run_limited kills a leg past its limit (exit $rc after ${took}s)"
else
    fail "run_limited with a slow leg: exit $rc after ${took}s; stderr: $(cat "$TMP/err")"
fi

if [ "$failures" -gt 0 ]; then
    echo "selftest: $failures check(s) FAILED" >&2
    exit 1
fi
echo "selftest: all checks passed"
