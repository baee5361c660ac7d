/* A stand-in for bcryptprimitives.dll's ProcessPrng, which Rust's std
 * (1.78 and later) calls for random bytes and which Wine 8 lacks. Built
 * by tests/windows.sh for the Wine test set only, never shipped: a real
 * Windows (10 and later) has the genuine one. It forwards to
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
