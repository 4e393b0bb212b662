/* TLS named groups: config names <-> code points (IANA TLS Supported Groups). */
#include "config.h"

#include <strings.h>

static const struct {
    uint16_t id;
    const char *name;
    int hybrid;
} groups[] = {
    { 0x11EC, "X25519MLKEM768", 1 },       /* draft-ietf-tls-ecdhe-mlkem */
    { 0x11EB, "SecP256r1MLKEM768", 1 },
    { 0x11ED, "SecP384r1MLKEM1024", 1 },
    { 29, "X25519", 0 },
    { 23, "secp256r1", 0 },
    { 24, "secp384r1", 0 },
    { 25, "secp521r1", 0 },
    { 30, "X448", 0 },
};

uint16_t px_group_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcasecmp(groups[i].name, name))
            return groups[i].id;
    /* common aliases */
    if (!strcasecmp(name, "P-256") || !strcasecmp(name, "prime256v1"))
        return 23;
    if (!strcasecmp(name, "P-384"))
        return 24;
    return 0;
}

const char *px_group_name(uint16_t id)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i].id == id)
            return groups[i].name;
    return NULL;
}

int px_group_is_hybrid(uint16_t id)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i].id == id)
            return groups[i].hybrid;
    return 0;
}

static uint16_t all_ids[sizeof groups / sizeof groups[0]];
int px_group_all(const uint16_t **ids_out)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        all_ids[i] = groups[i].id;
    *ids_out = all_ids;
    return (int)(sizeof groups / sizeof groups[0]);
}
