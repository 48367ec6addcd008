#!/usr/bin/env bash
# Counts what does not drift: user-space instructions (valgrind's callgrind) and syscalls
# (strace) per echo round trip, for the echo bench's servers: the runtime's net module on the
# default reactor and on the polling adapter, the bare adapters in the mio loop's shape
# (reactor-mio, reactor-polling: what an adapter costs over the mio loop, which reads until
# EAGAIN as they do), the hand-written mio loop, the raw epoll loop (the floor) and tokio
# current_thread. Linux only.
#
# usage: ci/count-echo.sh [SCENARIO...]      SCENARIO is CONNSxSIZE; default: 1x64 64x64
#
# Environment:
#   COUNT    round trips of the smaller of the two runs per figure (default 4000)
#   SERVERS  the servers to count (default: runtime runtime-polling reactor-mio
#            reactor-polling mio raw-epoll tokio)
#   BENCH    the echo bench's executable (default: built with cargo bench --no-run)
#   PACE_US  the client's pause between waves (default 1000): every connection makes one
#            round trip per wave, then the client pauses. A tool slows the server ~50x; an
#            unpaced client would always have its next message waiting, so the server would
#            never take its idle path (socket drained, back to the wait) and the counts would
#            depend on timing. Paced, each wave starts with an idle server: one connection
#            measures the idle-between-messages path, 64 connections a burst of 64 messages.
#
# Each server runs as the echo bench's child (`--child echo KIND`, one process, its stdin
# held open) under callgrind or strace, driven by the bench's load generator (`--child
# loadgen`, as examples/loadgen) with an exact round-trip count (`--count`). Every figure is
# the difference between a run of COUNT and a run of 2*COUNT round trips, divided by COUNT: start-up, connection set-up and tear-down cancel.
# Instructions are callgrind's Ir of the server process (user space only: the kernel is not
# simulated); syscalls are the calls strace saw in every thread of the server.
#
# Prints a markdown table and writes it to target/count-echo/counts.md. Installs valgrind
# and strace with apt-get when they are missing (root or sudo).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="$ROOT/target/count-echo"
mkdir -p "$OUT"

COUNT="${COUNT:-4000}"
PACE_US="${PACE_US:-1000}"
SERVERS="${SERVERS:-runtime runtime-polling reactor-mio reactor-polling mio raw-epoll tokio}"
if [ "$#" -gt 0 ]; then SCENARIOS="$*"; else SCENARIOS="1x64 64x64"; fi

die() { echo "count-echo: $*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "Linux only (callgrind and strace)"
case "$COUNT" in ''|*[!0-9]*|0) die "COUNT must be a positive integer" ;; esac
case "$PACE_US" in ''|*[!0-9]*) die "PACE_US must be a whole number of microseconds" ;; esac

need=""
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
command -v strace >/dev/null 2>&1 || need="$need strace"
if [ -n "$need" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing:$need (not root, no sudo)"
        SUDO=sudo
    fi
    echo "count-echo: installing$need" >&2
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || die "apt-get update failed"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $need >&2 \
        || die "apt-get install$need failed"
fi

# BENCH: the echo bench's executable (the bench passes its own); else it is built here. The
# load generator is the same executable's `--child loadgen` (benches/common/loadgen.rs, as
# examples/loadgen.rs).
if [ -z "${BENCH:-}" ]; then
    echo "count-echo: building the echo bench (release)" >&2
    BENCH="$(cargo bench --no-run --bench echo --message-format=json 2>/dev/null \
        | grep -o '"executable":"[^"]*"' | tail -n 1 | sed 's/"executable":"//;s/"$//')"
fi
[ -x "$BENCH" ] || die "no echo bench executable (BENCH=${BENCH:-}); cargo bench --no-run --bench echo failed?"

# run_one TOOL KIND CONNS SIZE N TAG: runs server KIND under TOOL (callgrind | strace) for N
# round trips; prints the count (Ir or syscalls).
run_one() {
    local tool="$1" kind="$2" conns="$3" size="$4" n="$5" tag="$6"
    local dir="$OUT/$tag"
    rm -rf "$dir"; mkdir -p "$dir"
    mkfifo "$dir/stdin"
    local -a wrap
    case "$tool" in
        callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out") ;;
        strace) wrap=(strace -f -qq -o "$dir/strace.out") ;;
    esac
    "${wrap[@]}" "$BENCH" --child echo "$kind" <"$dir/stdin" >"$dir/stdout" 2>"$dir/stderr" &
    local pid=$!
    exec 4>"$dir/stdin"
    local addr="" waited=0
    while [ -z "$addr" ]; do
        addr="$(sed -n 's/^READY //p' "$dir/stdout" | head -n 1)"
        if [ -z "$addr" ]; then
            if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 1200 ]; then
                exec 4>&-; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
                echo "count-echo: $kind did not start under $tool; see $dir" >&2
                echo "NaN"; return
            fi
            sleep 0.1; waited=$((waited + 1))
        fi
    done
    if ! "$BENCH" --child loadgen --addr "$addr" --conns "$conns" --size "$size" --count "$n" \
        --pace-us "$PACE_US" --secs 600 >"$dir/loadgen" 2>&1; then
        echo "count-echo: loadgen failed against $kind under $tool; see $dir/loadgen" >&2
    fi
    exec 4>&-
    wait "$pid" 2>/dev/null
    local done_rt
    done_rt="$(sed -n 's/.* round_trips=\([0-9]*\).*/\1/p' "$dir/loadgen")"
    if [ "$done_rt" != "$n" ]; then
        echo "count-echo: $kind under $tool made ${done_rt:-no} round trips of $n" >&2
        echo "NaN"; return
    fi
    case "$tool" in
        callgrind) sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$dir/callgrind.out" | head -n 1 ;;
        # One line per call; a call that blocked shows as "unfinished" then "resumed": count
        # it once. Signals (---) and exits (+++) are not calls.
        strace) grep -c -v -e 'resumed>' -e '^[0-9]* *+++' -e '^[0-9]* *---' "$dir/strace.out" ;;
    esac
}

# per_rt TOOL KIND CONNS SIZE: (count at 2N - count at N) / N, two decimals.
per_rt() {
    local a b
    a="$(run_one "$1" "$2" "$3" "$4" "$COUNT" "$2-$3x$4-$1-a")"
    b="$(run_one "$1" "$2" "$3" "$4" $((2 * COUNT)) "$2-$3x$4-$1-b")"
    awk -v a="$a" -v b="$b" -v n="$COUNT" 'BEGIN {
        if (a == "NaN" || b == "NaN" || a == "" || b == "") { print "n/a"; exit }
        printf "%.2f\n", (b - a) / n }'
}

table="$OUT/counts.md"
{
    echo "### Echo: user-space instructions and syscalls per round trip"
    echo
    echo "ci/count-echo.sh, $(date -u +%Y-%m-%d), $(uname -sr), $(valgrind --version), strace $(strace -V | head -n 1 | awk '{print $NF}');"
    echo "each figure: (run of $((2 * COUNT)) round trips - run of $COUNT) / $COUNT; the client runs in"
    echo "waves (one round trip per connection) with a ${PACE_US} µs pause after each, so every wave"
    echo "starts with the server idle."
    echo
    printf '| server |'
    for sc in $SCENARIOS; do printf ' instructions, %s | syscalls, %s |' "$sc" "$sc"; done
    echo
    printf '|---|'
    for _ in $SCENARIOS; do printf -- '---:|---:|'; done
    echo
} >"$table"
for kind in $SERVERS; do
    row="| $kind |"
    for sc in $SCENARIOS; do
        conns="${sc%x*}"; size="${sc#*x}"
        case "$conns$size" in *[!0-9]*|'') die "scenario '$sc' is not CONNSxSIZE" ;; esac
        echo "count-echo: $kind $sc: callgrind" >&2
        ir="$(per_rt callgrind "$kind" "$conns" "$size")"
        echo "count-echo: $kind $sc: strace" >&2
        sc_n="$(per_rt strace "$kind" "$conns" "$size")"
        row="$row $ir | $sc_n |"
    done
    echo "$row" >>"$table"
done
cat "$table"
