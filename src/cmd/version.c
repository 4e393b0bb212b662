/* `pqproxy --version`: what this binary is and what its wolfSSL can really do.
 * Key-exchange groups and signature algorithms are probed at run time (a key
 * share or a key pair is actually generated), not taken from headers. */
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/dilithium.h>

#include <llhttp.h>
#include <uv.h>

#include "cmd/cli.h"
#include "config/config.h"
#include "net/tls.h"
#include "cmd/version.h"

int px_probe_group(uint16_t group)
{
    if (px_tls_global_init() != 0)
        return 0;
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    WOLFSSL *ssl = ctx ? wolfSSL_new(ctx) : NULL;
    int ok = ssl && wolfSSL_UseKeyShare(ssl, group) == WOLFSSL_SUCCESS;
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    return ok;
}

static int probe_mldsa(WC_RNG *rng, int level)
{
    wc_MlDsaKey key;
    int ok;
    if (wc_MlDsaKey_Init(&key, NULL, INVALID_DEVID) != 0)
        return 0;
    ok = wc_MlDsaKey_SetParams(&key, (byte)level) == 0 && wc_MlDsaKey_MakeKey(&key, rng) == 0;
    wc_MlDsaKey_Free(&key);
    return ok;
}

static int probe_ecdsa(WC_RNG *rng, int curve, int size)
{
    ecc_key key;
    int ok;
    if (wc_ecc_init(&key) != 0)
        return 0;
    ok = wc_ecc_make_key_ex(rng, size, &key, curve) == 0;
    wc_ecc_free(&key);
    return ok;
}

static int probe_ed25519(WC_RNG *rng)
{
    ed25519_key key;
    int ok;
    if (wc_ed25519_init(&key) != 0)
        return 0;
    ok = wc_ed25519_make_key(rng, ED25519_KEY_SIZE, &key) == 0;
    wc_ed25519_free(&key);
    return ok;
}

int px_probe_sigalgs(px_sigalg_list_t *out)
{
    WC_RNG rng;
    memset(out, 0, sizeof *out);
    if (wc_InitRng(&rng) != 0)
        return -1;
#define ADD(cond, nm) do { if (cond) out->names[out->count++] = nm; } while (0)
    ADD(probe_mldsa(&rng, WC_ML_DSA_44), "ML-DSA-44");
    ADD(probe_mldsa(&rng, WC_ML_DSA_65), "ML-DSA-65");
    ADD(probe_mldsa(&rng, WC_ML_DSA_87), "ML-DSA-87");
    ADD(probe_ecdsa(&rng, ECC_SECP256R1, 32), "ECDSA-P256");
    ADD(probe_ecdsa(&rng, ECC_SECP384R1, 48), "ECDSA-P384");
    ADD(probe_ed25519(&rng), "Ed25519");
#undef ADD
    wc_FreeRng(&rng);
    return out->count;
}

int px_cmd_version(int argc, char **argv)
{
    const uint16_t *ids;
    int n = px_group_all(&ids);
    px_sigalg_list_t sigs;

    if (argc > 1 && px_cli_is_help(argv[1])) {
        printf("usage: pqproxy version    (also pqproxy --version)\n"
               "Prints the versions of pqproxy, wolfSSL, libuv and llhttp, and the key-exchange\n"
               "groups and signature algorithms this build can use (probed at run time).\n");
        return 0;
    }
    if (argc > 1)
        return px_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    wolfSSL_Init();
    printf("pqproxy %s\n", PX_VERSION);
    printf("wolfSSL %s\n", wolfSSL_lib_version());
    printf("libuv %s, llhttp %d.%d.%d\n", uv_version_string(), LLHTTP_VERSION_MAJOR,
           LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    printf("key exchange (hybrid post-quantum):");
    for (int i = 0; i < n; i++)
        if (px_group_is_hybrid(ids[i]) && px_probe_group(ids[i]))
            printf(" %s", px_group_name(ids[i]));
    printf("\nkey exchange (classical):");
    for (int i = 0; i < n; i++)
        if (!px_group_is_hybrid(ids[i]) && px_probe_group(ids[i]))
            printf(" %s", px_group_name(ids[i]));
    printf("\nsignatures:");
    px_probe_sigalgs(&sigs);
    for (int i = 0; i < sigs.count; i++)
        printf(" %s", sigs.names[i]);
    printf("\n");
    wolfSSL_Cleanup();
    return 0;
}
