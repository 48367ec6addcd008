#!/usr/bin/env bash
# cargo's runner for x86_64-pc-windows-gnu under Wine (ci/test.sh sets
# CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER to this script): runs one Windows
# executable with `wine`, with two guards the bare runner lacks.
#
# - A time limit per executable (CI_WINE_BINARY_LIMIT seconds, default 300; the
#   slowest test binary takes about 16 s here). A hang fails that executable,
#   named, and the other test binaries still run; libtest's own "has been
#   running for over 60 seconds" lines above it name the test.
# - Wine's own start-up fault: a new process sometimes dies at once with
#   "wine client error:0: recvmsg: Connection reset by peer" (its connection to
#   the wineserver reset; seen about once in 70 starts here, with the server
#   still alive). That is Wine failing to start the process, not a verdict of
#   the tests, so the executable is started again (at most twice more), loudly.
#   A failure that prints anything else is returned as it is.
#
# Usage: ci/wine-run.sh PROGRAM.exe [ARGS...]
set -u

limit="${CI_WINE_BINARY_LIMIT:-300}"
wine="${WINE:-wine}"
name="$(basename "$1")"
err="$(mktemp "${TMPDIR:-/tmp}/wine-run.XXXXXX")"
trap 'rm -f "$err"' EXIT

attempt=1
while :; do
    rc=0
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 10 "$limit" "$wine" "$@" 2> >(tee "$err" >&2) || rc=$?
    else
        "$wine" "$@" 2> >(tee "$err" >&2) || rc=$?
    fi
    wait # the tee of stderr, so $err is complete
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "ci: wine-run: $name ran past ${limit}s (CI_WINE_BINARY_LIMIT): killed as hung" >&2
        exit 124
    fi
    if [ "$rc" != 0 ] && [ "$attempt" -lt 3 ] && grep -q "wine client error" "$err"; then
        echo "ci: WARNING: wine-run: Wine failed to run $name (wine client error, attempt $attempt); starting it again" >&2
        attempt=$((attempt + 1))
        continue
    fi
    exit "$rc"
done
