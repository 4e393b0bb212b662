/* `pqproxy certgen`: writes the development PKI that `make run` and the
 * tests use, so nothing has to be supplied by hand. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "cmd/certgen.h"
#include "cmd/certgen_der.h"
#include "cmd/cli.h"
#include "core/errors.h"

#define DEFAULT_DAYS 365
#define MAX_USER_SANS 64
#define CLIENT_CN "pqproxy-dev-client"

static const char *const default_sans[] = { "localhost", "127.0.0.1", "::1" };
#define NDEFAULT_SANS ((int)(sizeof default_sans / sizeof default_sans[0]))

enum { F_CA, F_SERVER, F_MLDSA_CA, F_SERVER_MLDSA, F_CLIENT, NPAIRS };

static const struct {
    const char *crt, *key, *what;
} pair_files[NPAIRS] = {
    [F_CA] = { "ca.crt", "ca.key", "ECDSA P-384 CA \"pqproxy development CA\"" },
    [F_SERVER] = { "server.crt", "server.key", "ECDSA P-256 server certificate, signed by ca" },
    [F_MLDSA_CA] = { "mldsa-ca.crt", "mldsa-ca.key",
                     "ML-DSA-87 CA \"pqproxy development ML-DSA CA\"" },
    [F_SERVER_MLDSA] = { "server-mldsa.crt", "server-mldsa.key",
                         "ML-DSA-65 server certificate, signed by mldsa-ca" },
    [F_CLIENT] = { "client.crt", "client.key",
                   "ECDSA P-256 client certificate (mTLS), signed by ca" },
};
#define BUNDLE_FILE "bundle-ca.crt"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: pqproxy certgen --out DIR [--san NAME]... [--days N] [--force]\n"
            "\n"
            "Makes a development PKI in DIR (created if missing):\n"
            "  ca.crt, ca.key                      ECDSA P-384 CA\n"
            "  server.crt, server.key              ECDSA P-256 server leaf signed by ca\n"
            "  mldsa-ca.crt, mldsa-ca.key          ML-DSA-87 CA\n"
            "  server-mldsa.crt, server-mldsa.key  ML-DSA-65 server leaf signed by mldsa-ca\n"
            "  client.crt, client.key              ECDSA P-256 client leaf (mTLS) signed by ca\n"
            "  bundle-ca.crt                       ca.crt + mldsa-ca.crt\n"
            "Server certificates name localhost, 127.0.0.1 and ::1, plus each --san\n"
            "(a DNS name or an IP address). Keys are PKCS#8 PEM, mode 0600.\n"
            "\n"
            "  --out DIR     output directory\n"
            "  --san NAME    extra subjectAltName for the server certificates (repeatable)\n"
            "  --days N      validity in days (default %d)\n"
            "  --force       overwrite existing files\n",
            DEFAULT_DAYS);
    return f == stderr ? 2 : 0;
}

/* mkdir -p with mode 0755 for what is created. */
int px_make_dirs(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof path)
        return (errno = ENAMETOOLONG), -1;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) == 0)
            chmod(path, 0755); /* 0755 whatever the umask */
        else if (errno != EEXIST)
            return -1;
        *p = c;
        if (c == '\0')
            break;
    }
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return (errno = ENOTDIR), -1;
    return 0;
}

static int join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Without --force nothing is generated if any output exists. */
static int check_existing(const char *dir)
{
    char path[PATH_MAX];
    const char *names[2 * NPAIRS + 1];
    int n = 0, found = 0;
    struct stat st;

    for (int i = 0; i < NPAIRS; i++) {
        names[n++] = pair_files[i].crt;
        names[n++] = pair_files[i].key;
    }
    names[n++] = BUNDLE_FILE;
    for (int i = 0; i < n; i++) {
        if (join(path, sizeof path, dir, names[i]) != 0)
            return -1;
        if (lstat(path, &st) == 0) {
            fprintf(stderr, "pqproxy certgen: %s already exists (use --force to overwrite)\n",
                    path);
            found = 1;
        }
    }
    return found ? -1 : 0;
}

static int write_one(const char *dir, const char *name, const char *data, size_t len, int mode,
                     int force)
{
    char path[PATH_MAX];
    int ret;

    if (join(path, sizeof path, dir, name) != 0) {
        fprintf(stderr, "pqproxy certgen: %s/%s: path too long\n", dir, name);
        return -1;
    }
    ret = px_pem_write_file(path, data, len, mode, force);
    if (ret == -EEXIST) {
        fprintf(stderr, "pqproxy certgen: %s already exists (use --force to overwrite)\n", path);
        return -1;
    }
    if (ret != 0) {
        fprintf(stderr, "pqproxy certgen: writing %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  %-40s %04o\n", path, (unsigned)mode);
    return 0;
}

static int generate(px_pem_pair_t pairs[NPAIRS], const char *const *sans, int nsans, int days)
{
    static const char *const client_san[] = { CLIENT_CN };
    int ret;

#define STEP(call, idx)                                                                    \
    do {                                                                                   \
        if ((ret = (call)) != 0) {                                                         \
            fprintf(stderr, "pqproxy certgen: making %s (%s) failed: %s\n",                \
                    pair_files[idx].crt, pair_files[idx].what, px_certgen_errmsg());       \
            return -1;                                                                     \
        }                                                                                  \
    } while (0)
    STEP(px_certgen_ca(PX_KEY_ECDSA_P384, "pqproxy development CA", days, &pairs[F_CA]), F_CA);
    STEP(px_certgen_leaf(PX_KEY_ECDSA_P256, &pairs[F_CA], "localhost", sans, nsans, days, 0,
                         &pairs[F_SERVER]), F_SERVER);
    /* A SAN naming the client too: strict verifiers (pyca/cryptography's
     * client policy) insist on the extension even though RFC 5280 does not. */
    STEP(px_certgen_leaf(PX_KEY_ECDSA_P256, &pairs[F_CA], CLIENT_CN, client_san, 1, days, 1,
                         &pairs[F_CLIENT]), F_CLIENT);
    STEP(px_certgen_ca(PX_KEY_MLDSA87, "pqproxy development ML-DSA CA", days,
                       &pairs[F_MLDSA_CA]), F_MLDSA_CA);
    STEP(px_certgen_leaf(PX_KEY_MLDSA65, &pairs[F_MLDSA_CA], "localhost", sans, nsans, days, 0,
                         &pairs[F_SERVER_MLDSA]), F_SERVER_MLDSA);
#undef STEP
    return 0;
}

int px_cmd_certgen(int argc, char **argv)
{
    const char *out = NULL, *v;
    const char *sans[NDEFAULT_SANS + MAX_USER_SANS];
    int nsans = 0, days = DEFAULT_DAYS, force = 0, rc = 1, inited = 0;
    px_pem_pair_t pairs[NPAIRS];
    char *bundle = NULL;
    size_t bundle_len = 0;

    memset(pairs, 0, sizeof pairs);
    for (int i = 0; i < NDEFAULT_SANS; i++)
        sans[nsans++] = default_sans[i];
    for (int i = 1; i < argc; i++) {
        int r = 0;
        if (px_cli_is_help(argv[i]))
            return usage(stdout);
        if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if ((r = px_cli_opt("certgen", argc, argv, &i, "--out", &v)) > 0) {
            if (!*v)
                return px_cli_usage_error("certgen", "--out needs a directory");
            out = v;
        } else if (r == 0 && (r = px_cli_opt("certgen", argc, argv, &i, "--san", &v)) > 0) {
            uint8_t ip[16];
            size_t iplen;
            if (px_san_classify(v, ip, &iplen) < 0)
                return px_cli_usage_error("certgen", "--san '%s' is not a DNS name or IP address", v);
            if (nsans == NDEFAULT_SANS + MAX_USER_SANS)
                return px_cli_usage_error("certgen", "at most %d --san values", MAX_USER_SANS);
            sans[nsans++] = v;
        } else if (r == 0 && (r = px_cli_opt("certgen", argc, argv, &i, "--days", &v)) > 0) {
            char *end;
            long d;
            errno = 0;
            d = strtol(v, &end, 10);
            if (*end || errno || d < 1 || d > 36500)
                return px_cli_usage_error("certgen", "--days must be 1..36500, not '%s'", v);
            days = (int)d;
        } else if (r < 0) {
            return 2;
        } else {
            return px_cli_unknown("certgen", argv[i]);
        }
    }
    if (!out)
        return px_cli_usage_error("certgen", "--out DIR is required");

    if (px_make_dirs(out) != 0) {
        fprintf(stderr, "pqproxy certgen: cannot create directory %s: %s\n", out,
                strerror(errno));
        goto fail;
    }
    if (!force && check_existing(out) != 0)
        goto fail;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        fprintf(stderr, "pqproxy certgen: wolfSSL_Init failed\n");
        goto fail;
    }
    inited = 1;
    if (generate(pairs, sans, nsans, days) != 0)
        goto fail;
    bundle_len = pairs[F_CA].cert_len + pairs[F_MLDSA_CA].cert_len;
    if (!(bundle = malloc(bundle_len + 1))) {
        fprintf(stderr, "pqproxy certgen: out of memory\n");
        goto fail;
    }
    memcpy(bundle, pairs[F_CA].cert_pem, pairs[F_CA].cert_len);
    memcpy(bundle + pairs[F_CA].cert_len, pairs[F_MLDSA_CA].cert_pem, pairs[F_MLDSA_CA].cert_len);
    bundle[bundle_len] = '\0';

    printf("pqproxy certgen: writing to %s (valid %d days; server names:", out, days);
    for (int i = 0; i < nsans; i++)
        printf(" %s", sans[i]);
    printf(")\n");
    for (int i = 0; i < NPAIRS; i++) {
        if (write_one(out, pair_files[i].key, pairs[i].key_pem, pairs[i].key_len, 0600, force) ||
            write_one(out, pair_files[i].crt, pairs[i].cert_pem, pairs[i].cert_len, 0644, force))
            goto fail;
    }
    if (write_one(out, BUNDLE_FILE, bundle, bundle_len, 0644, force))
        goto fail;
    for (int i = 0; i < NPAIRS; i++)
        printf("  %-17s %s\n", pair_files[i].crt, pair_files[i].what);
    printf("  %-17s ca.crt + mldsa-ca.crt: trust both for clients\n", BUNDLE_FILE);
    rc = 0;
fail:
    free(bundle);
    for (int i = 0; i < NPAIRS; i++)
        px_pem_pair_free(&pairs[i]);
    if (inited)
        wolfSSL_Cleanup();
    return rc;
}
