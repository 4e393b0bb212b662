/* A minimal DER reader: enough of X.509 and OCSP (RFC 6960) to find the
 * fields pqproxy reports or checks itself (validity dates, serial numbers,
 * an OCSP response's status and update times). Signatures and everything
 * else are left to wolfSSL. Single-byte tags, definite lengths only. */
#ifndef PX_DER_H
#define PX_DER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} px_der_t;

#define PX_DER_INTEGER 0x02
#define PX_DER_BITSTRING 0x03
#define PX_DER_OCTETSTRING 0x04
#define PX_DER_OID 0x06
#define PX_DER_ENUMERATED 0x0a
#define PX_DER_UTCTIME 0x17
#define PX_DER_GENTIME 0x18
#define PX_DER_SEQUENCE 0x30
#define PX_DER_CTX(n) (0xa0 | (n))          /* [n] constructed (EXPLICIT) */
#define PX_DER_CTX_PRIM(n) (0x80 | (n))     /* [n] primitive (IMPLICIT) */

/* The next element of r: its tag and contents; r moves past it. 0, or -1 if
 * r is empty or the element is malformed or overruns r. */
int px_der_next(px_der_t *r, unsigned *tag, px_der_t *val);
/* The same, but the element must have this tag. */
int px_der_expect(px_der_t *r, unsigned tag, px_der_t *val);
/* If the next element has this tag, reads it and returns 1; else 0 and r is
 * unchanged; -1 if malformed. */
int px_der_optional(px_der_t *r, unsigned tag, px_der_t *val);
/* UTCTime or GeneralizedTime ("Z" form, as RFC 5280 requires) -> Unix time. */
int px_der_time(unsigned tag, const px_der_t *v, int64_t *t);

#endif
