/*
 * Stand-in bcryptprimitives.dll for running Rust test binaries under Wine 8.0.
 *
 * Rust's std (1.78+) on *-pc-windows-gnu imports ProcessPrng from
 * bcryptprimitives.dll. Wine 8.0 (Debian 12) ships no such DLL, so every
 * Rust .exe fails to load (status c0000135, exit code 53). This DLL exports
 * ProcessPrng and forwards it to advapi32's SystemFunction036 (RtlGenRandom),
 * which Wine implements.
 *
 * Built by ci/setup-wine.sh with:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *       processprng.c processprng.def -ladvapi32
 * and found through WINEDLLPATH.
 */
#include <windows.h>

/* advapi32!SystemFunction036, a.k.a. RtlGenRandom. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed large requests in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    /* Like the real one, ProcessPrng always reports success. */
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
