/* The little DER that certgen writes itself: what wolfSSL's `Cert`
 * template cannot express (a subjectAltName with DNS names and IP
 * addresses when wolfSSL lacks WOLFSSL_ALT_NAMES) and PKCS#8 containers.
 * Lengths are definite and below 2^24. */
#ifndef PX_CERTGEN_DER_H
#define PX_CERTGEN_DER_H

#include <stddef.h>
#include <stdint.h>

/* Size of a tag + length header for a value of len bytes. */
size_t px_der_hdr_size(size_t len);
/* Writes tag and length; returns the bytes written. */
size_t px_der_put_hdr(uint8_t *p, uint8_t tag, size_t len);
/* Writes tag, length and the value; returns the bytes written. */
size_t px_der_put(uint8_t *p, uint8_t tag, const void *data, size_t len);
/* Reads a tag and length at p; fails (-1) unless the whole element fits in
 * avail bytes. */
int px_der_get_hdr(const uint8_t *p, size_t avail, uint8_t *tag, size_t *hdr, size_t *len);

/* GeneralName tags used for subjectAltName. */
enum { PX_SAN_DNS = 0x82, PX_SAN_IP = 0x87 }; /* [2] dNSName, [7] iPAddress */

/* Classifies a SAN: PX_SAN_IP (ip[] holds 4 or 16 bytes, *iplen set) for an
 * IPv4/IPv6 literal, PX_SAN_DNS for an ASCII host name (a leading "*." is
 * allowed), PX_EINVAL otherwise. */
int px_san_classify(const char *s, uint8_t ip[16], size_t *iplen);

/* Encodes the subjectAltName Extension (non-critical):
 * SEQUENCE { 2.5.29.17, OCTET STRING { GeneralNames } } into a malloc'd
 * buffer. On PX_EINVAL *bad is the index of the offending name (-1 when the
 * count is out of range); PX_ENOMEM when out of memory. */
int px_san_extension(const char *const *sans, int nsans, uint8_t **out, size_t *out_len,
                     int *bad);

/* Appends one encoded Extension to the TBSCertificate in buf[0..tbs_len)
 * (adding the [3] extensions field if it has none), in place. Returns the
 * new length, PX_EPARSE if buf is not a TBSCertificate, PX_ETOOBIG if the
 * result exceeds cap, or PX_ENOMEM. */
int px_tbs_add_extension(uint8_t *buf, size_t tbs_len, size_t cap, const uint8_t *ext,
                         size_t ext_len);

#endif
