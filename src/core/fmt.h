/* Number formatting for hot paths (no locale, no snprintf). */
#ifndef PX_CORE_FMT_H
#define PX_CORE_FMT_H

#include <stdint.h>

/* Writes the decimal digits of n ending just before end (room for 20
 * digits); returns where they start. */
static inline char *px_u64_dec(char *end, uint64_t n)
{
    do
        *--end = (char)('0' + n % 10);
    while (n /= 10);
    return end;
}

#endif
