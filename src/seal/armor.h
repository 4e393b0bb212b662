/* age's ASCII armour (C2SP age, "ASCII armor"): strict PEM (RFC 7468,
 * section 3) with the label "AGE ENCRYPTED FILE", padded canonical base64
 * in lines of exactly 64 columns but the last (1-64), no headers, LF or CRLF
 * line ends, and nothing but whitespace before the BEGIN line or after the
 * END line. Both directions stream through a stdio FILE in constant memory,
 * so px_age_seal and px_age_open work on armoured files unchanged. */
#ifndef PX_ARMOR_H
#define PX_ARMOR_H

#include <stddef.h>
#include <stdio.h>

#define PX_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define PX_ARMOR_END   "-----END AGE ENCRYPTED FILE-----"

/* Skips leading whitespace of in and tells whether what follows is armour
 * (it starts with '-'; the BEGIN line itself is checked by the reader).
 * 1 or 0; in is left at the first byte that is not whitespace. */
int px_armor_detect(FILE *in);

/* A FILE that reads the bytes the armour of in encodes, or NULL (ENOMEM).
 * On malformed armour its reads fail (ferror) and err (errlen bytes, which
 * must outlive the FILE) holds the reason, starting with "armor:"; err is
 * "" while the armour is good. The END line and the whitespace after it are
 * checked before the reader reports end of file. fclose does not close in. */
FILE *px_armor_reader(FILE *in, char *err, size_t errlen);

/* A FILE whose bytes are written to out as armour; fclose writes the last
 * line and the END line (0, or EOF on a write error). NULL on ENOMEM. */
FILE *px_armor_writer(FILE *out);

#endif
