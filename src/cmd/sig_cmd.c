/* `pqproxy keygen | sign | verify` (docs/signatures.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/age_cmd.h"
#include "cmd/certgen.h"
#include "cmd/cli.h"
#include "sig/sig.h"
#include "sig/sigwire.h"

#define MAX_HDRS 64
#define MAX_BODY (64u << 20)

static int usage_keygen(void)
{
    printf("usage: pqproxy keygen [--alg hybrid] --out PREFIX [--force]\n"
           "  writes PREFIX.ecdsa.key/.pub (P-384) and PREFIX.mldsa.key/.pub (ML-DSA-87),\n"
           "  creating PREFIX's directory if missing; --force overwrites existing files\n"
           "usage: pqproxy keygen --alg age-pq|age-x25519 --out FILE [--force]\n"
           "  writes an age identity (AGE-SECRET-KEY-PQ-1... or AGE-SECRET-KEY-1...) to FILE\n"
           "  and prints its recipient (age1pq1... or age1...) for `pqproxy seal -r`\n");
    return 0;
}

/* An integer option value, all of it: 0, or a usage error (2). */
static int int_value(const char *cmd, const char *name, const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno)
        return px_cli_usage_error(cmd, "%s needs an integer, not '%s'", name, v);
    *out = n;
    return 0;
}

/* The directory that will hold PREFIX.* (as certgen creates its --out). */
static int make_prefix_dir(const char *prefix)
{
    char dir[4096];
    const char *slash = strrchr(prefix, '/');
    if (!slash || slash == prefix)
        return 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - prefix), prefix);
    return px_make_dirs(dir);
}

int px_cmd_keygen(int argc, char **argv)
{
    const char *alg = "hybrid", *out = NULL;
    int force = 0;
    px_sig_keypair_pem_t kp;
    char err[256], path[4096];

    for (int i = 1; i < argc; i++) {
        int r;
        if (px_cli_is_help(argv[i]))
            return usage_keygen();
        if (!strcmp(argv[i], "--force"))
            force = 1;
        else if ((r = px_cli_opt("keygen", argc, argv, &i, "--alg", &alg)) == 0 &&
                 (r = px_cli_opt("keygen", argc, argv, &i, "--out", &out)) == 0)
            return px_cli_unknown("keygen", argv[i]);
        else if (r < 0)
            return 2;
    }
    if (!out || !*out)
        return px_cli_usage_error("keygen", "--out PREFIX is required");
    if (strcmp(alg, "hybrid") && strcmp(alg, "age-pq") && strcmp(alg, "age-x25519"))
        return px_cli_usage_error("keygen", "--alg must be hybrid, age-pq or age-x25519, not '%s'", alg);
    if (make_prefix_dir(out) != 0) {
        fprintf(stderr, "pqproxy keygen: cannot create the directory of %s: %s\n", out,
                strerror(errno));
        return 1;
    }
    if (strcmp(alg, "hybrid"))
        return px_age_cmd_keygen(alg, out, force);
    if (px_sig_keygen(&kp, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy keygen: %s\n", err);
        return 1;
    }
    const struct { const char *suffix; const char *data; int mode; } files[] = {
        { "ecdsa.key", kp.ecdsa_key, 0600 }, { "ecdsa.pub", kp.ecdsa_pub, 0644 },
        { "mldsa.key", kp.mldsa_key, 0600 }, { "mldsa.pub", kp.mldsa_pub, 0644 },
    };
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s.%s", out, files[i].suffix);
        int r = px_pem_write_file(path, files[i].data, strlen(files[i].data), files[i].mode, force);
        if (r != 0) {
            fprintf(stderr, "pqproxy keygen: %s: %s\n", path,
                    r == -EEXIST ? "exists (use --force)" : strerror(errno));
            px_sig_keypair_pem_free(&kp);
            return 1;
        }
        printf("%s\n", path);
    }
    px_sig_keypair_pem_free(&kp);
    return 0;
}

/* --- shared option parsing ------------------------------------------------------------ */

typedef struct {
    const char *method, *authority, *path, *query, *body_file;
    px_header_t hdrs[MAX_HDRS];
    int nhdrs;
    char *hdr_store[MAX_HDRS];
    unsigned char in_head[MAX_HDRS];   /* --head-header: in the head although --trailer */
    int response, status, trailer;
    char *req_sig;            /* the request's X-Signature (responses) */
    char *body;
    size_t body_len;
    char target[8192];
} msgopts_t;

static int add_header_line(msgopts_t *o, const char *line)
{
    const char *colon = strchr(line, ':');
    char *copy;
    if (!colon || colon == line || o->nhdrs >= MAX_HDRS)
        return -1;
    if (!(copy = strdup(line)))
        return -1;
    o->hdr_store[o->nhdrs] = copy;
    px_header_t *h = &o->hdrs[o->nhdrs++];
    h->name = copy;
    h->name_len = (size_t)(colon - line);
    h->value = copy + h->name_len + 1;
    h->value_len = strlen(h->value);
    while (h->value_len && (h->value[h->value_len - 1] == '\r' || h->value[h->value_len - 1] == '\n'))
        h->value_len--;
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            char *nb;
            cap = cap ? cap * 2 : 131072;
            if (cap > MAX_BODY + 1 || !(nb = realloc(buf, cap))) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, 65536, f);
        n += k;
        if (k == 0)
            break;
    }
    if (buf)
        buf[n] = '\0';
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static int add_header_file(msgopts_t *o, const char *path)
{
    size_t len;
    char *data = slurp(path, &len), *save = NULL, *line;
    int r = 0;
    if (!data)
        return -1;
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l && (r = add_header_line(o, line)) != 0)
            break;
    }
    free(data);
    return r;
}

static void msgopts_free(msgopts_t *o)
{
    for (int i = 0; i < o->nhdrs; i++)
        free(o->hdr_store[i]);
    free(o->body);
    free(o->req_sig);
}

/* Consumes a message option at argv[*i]: 1 if it was one, 0 if not, -1
 * after a usage error. */
static int msg_option(const char *cmd, msgopts_t *o, int argc, char **argv, int *i)
{
    static const char *const names[] = { "--method", "--authority", "--path", "--query", "--body",
                                         "--status", "--header", "--headers",
                                         "--request-signature", "--request-signature-file",
                                         "--head-header", NULL };
    const char *v = NULL;
    size_t len;
    int k, r = 0;
    int64_t n;

    if (!strcmp(argv[*i], "--response")) { o->response = 1; return 1; }
    if (!strcmp(argv[*i], "--trailer")) { o->trailer = 1; return 1; }
    for (k = 0; names[k] && !(r = px_cli_opt(cmd, argc, argv, i, names[k], &v)); k++)
        ;
    if (r <= 0)
        return r;
    switch (k) {
    case 0: o->method = v; break;
    case 1: o->authority = v; break;
    case 2: o->path = v; break;
    case 3: o->query = v[0] == '?' ? v + 1 : v; break;
    case 4: o->body_file = v; break;
    case 5:
        if (int_value(cmd, "--status", v, &n) != 0)
            return -1;
        o->status = n >= 100 && n <= 999 ? (int)n : 0;
        break;
    case 6:
        if (add_header_line(o, v))
            return px_cli_usage_error(cmd, "--header '%s' is not 'Name: value' (or over %d fields)",
                                      v, MAX_HDRS), -1;
        break;
    case 7:
        if (add_header_file(o, v))
            return px_cli_usage_error(cmd, "--headers %s: unreadable, a line without ':', or over "
                                      "%d fields", v, MAX_HDRS), -1;
        break;
    case 8:
        free(o->req_sig);
        if (!(o->req_sig = strdup(v)))
            return px_cli_usage_error(cmd, "out of memory"), -1;
        break;
    case 10:
        if (add_header_line(o, v))
            return px_cli_usage_error(cmd, "--head-header '%s' is not 'Name: value' (or over %d fields)",
                                      v, MAX_HDRS), -1;
        o->in_head[o->nhdrs - 1] = 1;
        break;
    default:
        free(o->req_sig);
        if (!(o->req_sig = slurp(v, &len)))
            return px_cli_usage_error(cmd, "cannot read --request-signature-file %s", v), -1;
        while (len && (o->req_sig[len - 1] == '\n' || o->req_sig[len - 1] == '\r'))
            o->req_sig[--len] = '\0';
    }
    return 1;
}

static int msgopts_finish(msgopts_t *o, px_sig_msg_t *m, px_sig_msg_t *req,
                          px_header_t *req_hdr)
{
    if (o->body_file) {
        if (!(o->body = slurp(o->body_file, &o->body_len))) {
            fprintf(stderr, "pqproxy: cannot read %s (or larger than %u bytes)\n", o->body_file,
                    MAX_BODY);
            return -1;
        }
    }
    memset(m, 0, sizeof *m);
    if (o->response) {
        if (o->status < 100 || o->status > 999) {
            fprintf(stderr, "pqproxy: --response needs --status N\n");
            return -1;
        }
        m->status = o->status;
        memset(req, 0, sizeof *req);
        req->is_request = 1;
        if (o->req_sig) {
            req_hdr->name = PX_SIG_FIELD;
            req_hdr->name_len = strlen(PX_SIG_FIELD);
            req_hdr->value = o->req_sig;
            req_hdr->value_len = strlen(o->req_sig);
            req->headers = req_hdr;
            req->header_count = 1;
        }
        m->req = req;
        if (o->trailer) {
            /* --head-header fields first (a stable partition), then the trailer section */
            px_header_t all[MAX_HDRS];
            int nh = 0;
            for (int i = 0; i < o->nhdrs; i++)
                if (o->in_head[i])
                    all[nh++] = o->hdrs[i];
            m->headers = o->hdrs;
            m->header_count = nh;
            m->trailers = o->hdrs + nh;
            m->trailer_count = o->nhdrs - nh;
            for (int i = 0, t = nh; i < o->nhdrs; i++)
                if (!o->in_head[i])
                    all[t++] = o->hdrs[i];
            memcpy(o->hdrs, all, (size_t)o->nhdrs * sizeof all[0]);
        } else {
            m->headers = o->hdrs;
            m->header_count = o->nhdrs;
        }
        return 0;
    }
    const char *path = o->path ? o->path : "/";
    int n = snprintf(o->target, sizeof o->target, "%s%s%s", path, o->query ? "?" : "",
                     o->query ? o->query : "");
    if (n < 0 || (size_t)n >= sizeof o->target || path[0] != '/') {
        fprintf(stderr, "pqproxy: --path must start with '/' (and fit 8 KiB with the query)\n");
        return -1;
    }
    m->is_request = 1;
    m->method = o->method ? o->method : "POST";
    m->method_len = strlen(m->method);
    m->authority = o->authority ? o->authority : "localhost";
    m->authority_len = strlen(m->authority);
    m->target = o->target;
    m->target_len = (size_t)n;
    m->headers = o->hdrs;
    m->header_count = o->nhdrs;
    return 0;
}

/* --- sign -------------------------------------------------------------------------------- */

static int usage_sign(void)
{
    printf("usage: pqproxy sign --key PREFIX --keyid ID [--method M] [--authority HOST]\n"
            "         [--path /P] [--query Q] [--body FILE] [--header 'Name: v']... [--cover NAME]...\n"
            "         [--created T] [--ttl S] [--nonce N]\n"
            "       pqproxy sign --key PREFIX --keyid ID --response --status N [--body FILE]\n"
            "         [--request-signature V | --request-signature-file F] [--trailer]\n"
            "  prints the Content-Digest and X-Signature header lines to add\n");
    return 0;
}

int px_cmd_sign(int argc, char **argv)
{
    msgopts_t o;
    const char *key = NULL, *keyid = NULL, *nonce = NULL, *cover[PX_SIG_MAX_COMPONENTS];
    int ncover = 0, ret = 1;
    int64_t created = (int64_t)time(NULL), ttl = 300;
    px_sig_signer_t *s = NULL;
    px_sig_msg_t m, req;
    px_header_t req_hdr;
    px_buf_t out, dig;
    char err[300], cd[80];

    memset(&o, 0, sizeof o);
    px_buf_init(&out, 0);
    px_buf_init(&dig, 0);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (px_cli_is_help(argv[i])) {
            ret = usage_sign();
            goto done2;
        }
        if ((r = msg_option("sign", &o, argc, argv, &i)) == 0 &&
            (r = px_cli_opt("sign", argc, argv, &i, "--key", &key)) == 0 &&
            (r = px_cli_opt("sign", argc, argv, &i, "--keyid", &keyid)) == 0 &&
            (r = px_cli_opt("sign", argc, argv, &i, "--nonce", &nonce)) == 0) {
            if ((r = px_cli_opt("sign", argc, argv, &i, "--created", &v)) > 0)
                r = int_value("sign", "--created", v, &created) ? -1 : 1;
            else if (r == 0 && (r = px_cli_opt("sign", argc, argv, &i, "--ttl", &v)) > 0)
                r = int_value("sign", "--ttl", v, &ttl) ? -1 : 1;
            else if (r == 0 && (r = px_cli_opt("sign", argc, argv, &i, "--cover", &v)) > 0) {
                if (ncover == PX_SIG_MAX_COMPONENTS - 5) {
                    px_cli_usage_error("sign", "at most %d --cover", ncover);
                    r = -1;
                } else {
                    cover[ncover++] = v;
                }
            }
        }
        if (r == 0) {
            px_cli_unknown("sign", argv[i]);
            r = -1;
        }
        if (r < 0) {
            ret = 2;
            goto done2;
        }
    }
    if (!key || !keyid) {
        ret = px_cli_usage_error("sign", "--key PREFIX and --keyid ID are required");
        goto done2;
    }
    if (px_sig_signer_load(key, keyid, &s, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy sign: %s\n", err);
        goto done;
    }
    if (msgopts_finish(&o, &m, &req, &req_hdr) != 0)
        goto done;
    if (o.response) {
        px_sig_response_t *r = px_sig_response_begin(s, o.status, o.req_sig ? PX_SIG_FIELD : NULL,
                                                     o.req_sig, o.req_sig ? strlen(o.req_sig) : 0,
                                                     o.trailer);
        if (!r) {
            fprintf(stderr, "pqproxy sign: invalid response parameters\n");
            goto done;
        }
        px_sig_response_update(r, o.body, o.body_len);
        int fr = px_sig_response_finish(r, created, ttl, &dig, &out);
        px_sig_response_free(r);
        if (fr != 0) {
            fprintf(stderr, "pqproxy sign: signing failed: %s\n", px_strerror(fr));
            goto done;
        }
        printf("Content-Digest: %.*s\nX-Signature: %.*s\n", (int)px_buf_size(&dig),
               px_buf_ptr(&dig), (int)px_buf_size(&out), px_buf_ptr(&out));
        ret = 0;
        goto done;
    }
    if (px_content_digest(o.body ? o.body : "", o.body_len, cd, sizeof cd) != 0 ||
        add_header_line(&o, "Content-Digest: ") != 0) {
        fprintf(stderr, "pqproxy sign: cannot compute Content-Digest\n");
        goto done;
    }
    o.hdrs[o.nhdrs - 1].value = cd;
    o.hdrs[o.nhdrs - 1].value_len = strlen(cd);
    m.headers = o.hdrs;
    m.header_count = o.nhdrs;
    int sr = px_sig_sign_request(s, &m, cover, ncover, created, ttl, nonce, &out);
    if (sr != 0) {
        fprintf(stderr, "pqproxy sign: signing failed: %s (check --cover names, --nonce, --ttl, "
                "and that covered headers are given)\n", px_strerror(sr));
        goto done;
    }
    printf("Content-Digest: %s\nX-Signature: %.*s\n", cd, (int)px_buf_size(&out), px_buf_ptr(&out));
    ret = 0;
done:
    px_sig_signer_free(s);
done2:
    px_buf_free(&out);
    px_buf_free(&dig);
    msgopts_free(&o);
    return ret;
}

/* --- verify ------------------------------------------------------------------------------ */

static int usage_verify(void)
{
    printf("usage: pqproxy verify (--pub PREFIX [--keyid ID] | --keys DIR) [--method M]\n"
            "         [--authority HOST] [--path /P] [--query Q] [--body FILE]\n"
            "         [--header 'Name: v']... [--headers FILE] [--now T] [--skew S]\n"
            "         [--max-validity S] [--allow-classical] [--require NAME]...\n"
            "       pqproxy verify ... --response --status N [--request-signature V |\n"
            "         --request-signature-file F] [--trailer [--head-header 'Name: v']...]\n"
            "         [--expect-keyid ID]\n"
            "  exit 0 and 'OK ...' when the signature and the body digest verify;\n"
            "  exit 1 and 'FAIL <reason>: <detail>' otherwise\n");
    return 0;
}

int px_cmd_verify(int argc, char **argv)
{
    msgopts_t o;
    const char *pub = NULL, *keyid = NULL, *keys = NULL, *expect = NULL,
               *required[PX_SIG_MAX_COMPONENTS];
    px_sig_policy_t pol;
    px_sig_keyring_t *ring = NULL;
    px_sig_msg_t m, req;
    px_header_t req_hdr;
    px_sig_info_t info;
    px_sig_result_t r;
    int64_t now = (int64_t)time(NULL);
    int ret = 1;
    char err[300];

    memset(&o, 0, sizeof o);
    px_sig_policy_default(&pol);
    pol.required_headers = required;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int k;
        if (px_cli_is_help(argv[i])) {
            ret = usage_verify();
            goto done;
        }
        if (!strcmp(argv[i], "--allow-classical")) {
            pol.allow_classical = 1;
            continue;
        }
        if ((k = msg_option("verify", &o, argc, argv, &i)) == 0 &&
            (k = px_cli_opt("verify", argc, argv, &i, "--pub", &pub)) == 0 &&
            (k = px_cli_opt("verify", argc, argv, &i, "--keyid", &keyid)) == 0 &&
            (k = px_cli_opt("verify", argc, argv, &i, "--keys", &keys)) == 0 &&
            (k = px_cli_opt("verify", argc, argv, &i, "--expect-keyid", &expect)) == 0) {
            if ((k = px_cli_opt("verify", argc, argv, &i, "--now", &v)) > 0)
                k = int_value("verify", "--now", v, &now) ? -1 : 1;
            else if (k == 0 && (k = px_cli_opt("verify", argc, argv, &i, "--skew", &v)) > 0)
                k = int_value("verify", "--skew", v, &pol.max_skew_s) ? -1 : 1;
            else if (k == 0 && (k = px_cli_opt("verify", argc, argv, &i, "--max-validity", &v)) > 0)
                k = int_value("verify", "--max-validity", v, &pol.max_validity_s) ? -1 : 1;
            else if (k == 0 && (k = px_cli_opt("verify", argc, argv, &i, "--require", &v)) > 0) {
                if (pol.required_count == PX_SIG_MAX_COMPONENTS) {
                    px_cli_usage_error("verify", "at most %d --require", PX_SIG_MAX_COMPONENTS);
                    k = -1;
                } else {
                    required[pol.required_count++] = v;
                }
            }
        }
        if (k == 0) {
            px_cli_unknown("verify", argv[i]);
            k = -1;
        }
        if (k < 0) {
            ret = 2;
            goto done;
        }
    }
    if (!pub == !keys) {
        ret = px_cli_usage_error("verify", "give either --pub PREFIX or --keys DIR");
        goto done;
    }
    if (keys) {
        if (!(ring = px_sig_keyring_load_dir(keys, err, sizeof err))) {
            fprintf(stderr, "pqproxy verify: %s\n", err);
            goto done;
        }
    } else {
        if (!keyid) {
            keyid = strrchr(pub, '/') ? strrchr(pub, '/') + 1 : pub;
        }
        if (!(ring = px_sig_keyring_new()) ||
            px_sig_keyring_add_files(ring, keyid, pub, err, sizeof err) != 0) {
            fprintf(stderr, "pqproxy verify: %s\n", err);
            goto done;
        }
    }
    if (msgopts_finish(&o, &m, &req, &req_hdr) != 0)
        goto done;
    r = o.response ? px_sig_verify_response(ring, &pol, &m, expect, now, &info)
                   : px_sig_verify_request(ring, NULL, &pol, &m, now, &info);
    if (r == PX_SIG_OK) {
        px_digest_t d;
        px_digest_value_t v;
        if (px_digest_init(&d, info.digest_algs) != 0) {
            r = PX_SIG_INTERNAL;
        } else {
            px_digest_update(&d, o.body ? o.body : "", o.body_len);
            px_digest_final(&d, &v);
            r = px_content_digest_check(info.content_digest, info.content_digest_len, &v,
                                        info.detail, sizeof info.detail);
        }
    }
    if (r != PX_SIG_OK) {
        printf("FAIL %s: %s\n", px_sig_result_name(r), info.detail);
        goto done;
    }
    printf("OK keyid=%s nonce=%s created=%lld expires=%lld%s\n", info.keyid, info.nonce,
           (long long)info.created, (long long)info.expires, info.classical ? " classical" : "");
    ret = 0;
done:
    px_sig_keyring_free(ring);
    msgopts_free(&o);
    return ret;
}
