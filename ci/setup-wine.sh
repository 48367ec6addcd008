#!/usr/bin/env bash
# Prepare a headless Wine prefix in which Rust x86_64-pc-windows-gnu test
# binaries run (used by the `test-windows-wine` leg of ci/test.sh).
#
#   bash ci/setup-wine.sh             # set up (idempotent), print nothing else
#   eval "$(bash ci/setup-wine.sh --print-env)"   # set up + export the env
#                                                 # so that `cargo test
#                                                 # --target x86_64-pc-windows-gnu`
#                                                 # works in your shell
#
# What it does:
#   1. builds ci/wine/processprng.c into target/wine/dll/bcryptprimitives.dll
#      (Wine 8.0, as in Debian 12, has no bcryptprimitives.dll, but Rust's std
#      imports ProcessPrng from it: without this every Rust .exe dies at load
#      time with status c0000135, i.e. exit code 53 and, with WINEDEBUG=-all,
#      no message at all);
#   2. creates the prefix $WINEPREFIX (default target/wine/prefix) with
#      `wineboot -i`, headless, Mono/Gecko installers disabled;
#   3. copies the DLL into the prefix's C:\windows\system32 (Wine 8.0 does not
#      pick up a plain mingw DLL through WINEDLLPATH: that path is only
#      searched for Wine *builtin* modules);
#   4. runs ci/wine/prngcheck.c under Wine to prove ProcessPrng works.
#
# The apt packages (wine, wine64, gcc-mingw-w64-x86-64) are installed by
# ci/test.sh, not here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WINE_DIR="${CI_WINE_DIR:-$ROOT/target/wine}"
export WINEPREFIX="${WINEPREFIX:-$WINE_DIR/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# Never try to download/install Mono or Gecko (no network, no display).
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree=;mshtml=}"
export WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY || true
MINGW_CC="${MINGW_CC:-x86_64-w64-mingw32-gcc}"
WINE="${WINE:-wine}"
if command -v timeout >/dev/null 2>&1; then TO="timeout"; else TO=""; fi

print_env=0
[ "${1:-}" = "--print-env" ] && print_env=1

log() { echo "setup-wine: $*" >&2; }

for tool in "$MINGW_CC" "$WINE" wineserver; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing '$tool' (apt-get install wine wine64 gcc-mingw-w64-x86-64)"; exit 1; }
done

mkdir -p "$WINE_DIR/dll"
DLL="$WINE_DIR/dll/bcryptprimitives.dll"
CHECK_EXE="$WINE_DIR/dll/prngcheck.exe"
SRC="$ROOT/ci/wine"

# 1. Build the shim DLL and the checker (only when a source changed).
if [ ! -f "$DLL" ] || [ "$SRC/processprng.c" -nt "$DLL" ] || [ "$SRC/processprng.def" -nt "$DLL" ]; then
    log "building $DLL"
    "$MINGW_CC" -shared -O2 -s -Wall -Wextra -o "$DLL" \
        "$SRC/processprng.c" "$SRC/processprng.def" -ladvapi32
fi
if [ ! -f "$CHECK_EXE" ] || [ "$SRC/prngcheck.c" -nt "$CHECK_EXE" ]; then
    "$MINGW_CC" -O2 -s -Wall -Wextra -o "$CHECK_EXE" "$SRC/prngcheck.c"
fi

# 2. Create the prefix (first run takes ~15 s).
if [ ! -f "$WINEPREFIX/system.reg" ] || [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
    log "creating Wine prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    # A 64-bit-only Wine complains that syswow64\rundll32.exe is missing;
    # that is harmless noise.
    $TO 300 "$WINE" wineboot -i >/dev/null 2>&1 || log "wineboot exited $? (continuing)"
    $TO 120 wineserver -w || true
fi

# 3. Install the DLL into the prefix, unless this Wine ships its own
#    bcryptprimitives.dll (Wine >= 9: wineboot leaves a placeholder for it).
SYS32="$WINEPREFIX/drive_c/windows/system32"
if [ -f "$SYS32/bcryptprimitives.dll" ] && ! cmp -s "$DLL" "$SYS32/bcryptprimitives.dll" \
    && head -c 128 "$SYS32/bcryptprimitives.dll" | grep -aq "Wine \(placeholder\|builtin\) DLL"; then
    log "this Wine has its own bcryptprimitives.dll; not installing the shim"
elif ! cmp -s "$DLL" "$SYS32/bcryptprimitives.dll"; then
    log "installing bcryptprimitives.dll into $SYS32"
    cp -f "$DLL" "$SYS32/bcryptprimitives.dll"
fi

# 4. Prove it works.
out="$($TO 120 "$WINE" "$CHECK_EXE" 2>/dev/null | tr -d '\r')" || true
case "$out" in
    *"ProcessPrng ok"*) log "ProcessPrng shim OK ($("$WINE" --version 2>/dev/null))" ;;
    *) log "ProcessPrng check failed: '${out}'"; exit 1 ;;
esac

if [ "$print_env" = 1 ]; then
    cat <<EOF
export WINEPREFIX='$WINEPREFIX'
export WINEDEBUG='$WINEDEBUG'
export WINEDLLOVERRIDES='$WINEDLLOVERRIDES'
export WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER='$MINGW_CC'
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER='$WINE'
EOF
fi
