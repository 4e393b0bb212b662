/* Bech32 (BIP 173) as age uses it for keys: the original checksum constant
 * (not Bech32m) and no 90-character limit, since age1pq1 recipients carry
 * 1216 bytes. */
#ifndef PX_BECH32_H
#define PX_BECH32_H

#include <stddef.h>
#include <stdint.h>

/* HRP + "1" + data + checksum into out (NUL-terminated), all lower case or,
 * with upper set, all upper case. The length written, or PX_ETOOBIG when
 * outlen is short, PX_EINVAL for an empty or non-printable hrp. */
int px_bech32_encode(const char *hrp, const uint8_t *data, size_t len, int upper,
                     char *out, size_t outlen);

/* Decodes s: its HRP (lower-cased) into hrp, its data into data (at most cap
 * bytes) and *len. 0, or PX_EPARSE with the reason in err (mixed case, no
 * separator, a character outside the alphabet, bad checksum, non-zero
 * padding), PX_ETOOBIG when hrp or data do not fit. */
int px_bech32_decode(const char *s, char *hrp, size_t hrpcap, uint8_t *data, size_t cap,
                     size_t *len, char *err, size_t errlen);

#endif
