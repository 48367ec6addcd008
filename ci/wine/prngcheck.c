/*
 * Sanity check run by ci/setup-wine.sh inside the CI Wine prefix: proves
 * that bcryptprimitives.dll loads and that ProcessPrng fills a buffer.
 * Prints "ProcessPrng ok" and exits 0 on success.
 */
#include <windows.h>
#include <stdio.h>

typedef BOOL (WINAPI *process_prng_fn)(PBYTE, SIZE_T);

int main(void)
{
    BYTE buf[64] = {0};
    HMODULE dll = LoadLibraryA("bcryptprimitives.dll");
    process_prng_fn prng;
    int i, nonzero = 0;

    if (!dll) {
        printf("LoadLibrary(bcryptprimitives.dll) failed: %lu\n", GetLastError());
        return 2;
    }
    prng = (process_prng_fn)(void *)GetProcAddress(dll, "ProcessPrng");
    if (!prng) {
        printf("GetProcAddress(ProcessPrng) failed: %lu\n", GetLastError());
        return 3;
    }
    if (!prng(buf, sizeof buf)) {
        printf("ProcessPrng returned FALSE\n");
        return 4;
    }
    for (i = 0; i < (int)sizeof buf; i++)
        nonzero |= buf[i];
    if (!nonzero) {
        printf("ProcessPrng left the buffer all zero\n");
        return 5;
    }
    printf("ProcessPrng ok\n");
    return 0;
}
