/* `pqproxy keygen --alg age-pq|age-x25519`, `pqproxy seal`, `pqproxy open`
 * (docs/sealing.md). Outputs are written to a temporary file beside the
 * destination and renamed into place only when complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "seal/age.h"
#include "cmd/age_cmd.h"
#include "cmd/certgen.h"
#include "cmd/cli.h"

/* what fits the 64 KiB header age readers accept: an age1pq1 stanza is 1.6 KB */
#define MAX_RECIPIENTS 40
#define MAX_IDENTITIES 16

int px_age_cmd_keygen(const char *alg, const char *out, int force)
{
    char id[PX_AGE_KEY_STR], rcpt[PX_AGE_KEY_STR], err[256], ts[32];
    px_age_kind_t kind = !strcmp(alg, "age-pq") ? PX_AGE_PQ : PX_AGE_X25519;
    time_t now = time(NULL);
    struct tm tm;
    char *text;
    int r;

    if (px_age_keygen(kind, id, rcpt, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy keygen: %s\n", err);
        return 1;
    }
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    /* age-keygen's layout, so age tools read the file as is */
    if (asprintf(&text, "# created: %s\n# public key: %s\n%s\n", ts, rcpt, id) < 0) {
        fprintf(stderr, "pqproxy keygen: out of memory\n");
        return 1;
    }
    r = px_pem_write_file(out, text, strlen(text), 0600, force);
    explicit_bzero(text, strlen(text)); /* the secret key */
    explicit_bzero(id, sizeof id);
    free(text);
    if (r != 0) {
        fprintf(stderr, "pqproxy keygen: %s: %s\n", out, r == -EEXIST ? "exists (use --force)" : strerror(errno));
        return 1;
    }
    printf("%s\n", rcpt);
    return 0;
}

/* --- key files ------------------------------------------------------------------- */

typedef int (*parse_line_fn)(const char *line, void *dst, char *err, size_t errlen);

static int parse_recipient_line(const char *line, void *dst, char *err, size_t errlen)
{
    return px_age_parse_recipient(line, dst, err, errlen);
}

static int parse_identity_line(const char *line, void *dst, char *err, size_t errlen)
{
    return px_age_parse_identity(line, dst, err, errlen);
}

/* Every line of path but blank ones and '#' comments through parse into
 * items (of size each) after *n; 0, or 1 after naming the file and line. */
static int read_key_file(const char *cmd, const char *path, parse_line_fn parse, void *items,
                         size_t size, int *n, int max)
{
    FILE *f = fopen(path, "r");
    char line[PX_AGE_KEY_STR + 2], err[256];
    int lineno = 0, before = *n, ret = 0;

    if (!f) {
        fprintf(stderr, "pqproxy %s: %s: %s\n", cmd, path, strerror(errno));
        return 1;
    }
    while (!ret && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        lineno++;
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            fprintf(stderr, "pqproxy %s: %s line %d: line too long for a key\n", cmd, path, lineno);
            ret = 1;
            break;
        }
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (!l || line[0] == '#')
            continue;
        if (*n == max) {
            fprintf(stderr, "pqproxy %s: %s: more than %d keys\n", cmd, path, max);
            ret = 1;
        } else if (parse(line, (char *)items + size * (size_t)*n, err, sizeof err) != 0) {
            fprintf(stderr, "pqproxy %s: %s line %d: %s\n", cmd, path, lineno, err);
            ret = 1;
        } else {
            (*n)++;
        }
    }
    memset(line, 0, sizeof line);
    if (!ret && ferror(f)) {
        fprintf(stderr, "pqproxy %s: %s: read error\n", cmd, path);
        ret = 1;
    }
    if (!ret && *n == before) {
        fprintf(stderr, "pqproxy %s: %s: no key in the file\n", cmd, path);
        ret = 1;
    }
    fclose(f);
    return ret;
}

int px_age_read_identities(const char *cmd, const char *path, px_age_identity_t *ids, int *n,
                           int max)
{
    return read_key_file(cmd, path, parse_identity_line, ids, sizeof ids[0], n, max);
}

/* --- atomic output --------------------------------------------------------------------- */

typedef struct {
    char tmp[4096];
    FILE *f;
} atomic_out_t;

static int atomic_begin(atomic_out_t *a, const char *path, int mode)
{
    const char *slash = strrchr(path, '/');
    int fd;
    if (slash)
        snprintf(a->tmp, sizeof a->tmp, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
    else
        snprintf(a->tmp, sizeof a->tmp, ".%s.XXXXXX", path);
    if ((fd = mkstemp(a->tmp)) < 0)
        return -1;
    if (fchmod(fd, (mode_t)mode) != 0 || !(a->f = fdopen(fd, "wb"))) {
        close(fd);
        unlink(a->tmp);
        return -1;
    }
    return 0;
}

static int atomic_commit(atomic_out_t *a, const char *path)
{
    int ok = fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    ok = (fclose(a->f) == 0) && ok;
    a->f = NULL;
    if (ok && rename(a->tmp, path) == 0)
        return 0;
    unlink(a->tmp);
    return -1;
}

static void atomic_abort(atomic_out_t *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
}

/* Runs seal or open from in_path ("-": stdin) to out_path atomically. */
static int run_stream(const char *cmd, const char *in_path, const char *out_path, int mode,
                      int (*fn)(FILE *, FILE *, const void *, int, char *, size_t),
                      const void *keys, int nkeys)
{
    FILE *in = strcmp(in_path, "-") ? fopen(in_path, "rb") : stdin;
    atomic_out_t a = { .f = NULL };
    char err[512];
    int ret;

    if (!in) {
        fprintf(stderr, "pqproxy %s: %s: %s\n", cmd, in_path, strerror(errno));
        return 1;
    }
    if (atomic_begin(&a, out_path, mode) != 0) {
        fprintf(stderr, "pqproxy %s: %s: cannot create a temporary file beside it: %s\n", cmd,
                out_path, strerror(errno));
        ret = 1;
    } else if ((ret = fn(in, a.f, keys, nkeys, err, sizeof err)) != 0) {
        atomic_abort(&a);
        fprintf(stderr, "pqproxy %s: %s: %s (nothing written to %s)\n", cmd, in_path, err, out_path);
        ret = 1;
    } else if (atomic_commit(&a, out_path) != 0) {
        fprintf(stderr, "pqproxy %s: %s: %s\n", cmd, out_path, strerror(errno));
        ret = 1;
    }
    if (in != stdin)
        fclose(in);
    return ret;
}

static int seal_fn(FILE *in, FILE *out, const void *keys, int n, char *err, size_t errlen)
{
    return px_age_seal(in, out, keys, n, err, errlen);
}

static int open_fn(FILE *in, FILE *out, const void *keys, int n, char *err, size_t errlen)
{
    return px_age_open(in, out, keys, n, err, errlen);
}

/* --- seal / open ----------------------------------------------------------------------- */

/* px_cli_opt for an option with a short and a long name. */
static int opt2(const char *cmd, int argc, char **argv, int *i, const char *shrt, const char *lng,
                const char **v)
{
    int r = px_cli_opt(cmd, argc, argv, i, shrt, v);
    return r ? r : px_cli_opt(cmd, argc, argv, i, lng, v);
}

/* -o/--out and the input file argument, which seal and open share: 1 when
 * argv[*i] was one of them, 0 when not, -1 after a usage error. */
static int out_or_input(const char *cmd, int argc, char **argv, int *i, const char **out,
                        const char **in)
{
    int r = opt2(cmd, argc, argv, i, "-o", "--out", out);
    if (r > 0 && !strcmp(*out, "-")) {
        px_cli_usage_error(cmd, "-o - (stdout) is not supported: the output appears only when "
                           "complete, so it must be a file");
        return -1;
    }
    if (r)
        return r;
    if (argv[*i][0] == '-' && strcmp(argv[*i], "-"))
        return 0;
    if (*in) {
        px_cli_usage_error(cmd, "one input file only ('%s' and '%s')", *in, argv[*i]);
        return -1;
    }
    *in = argv[*i];
    return 1;
}

static int usage_seal(void)
{
    printf("usage: pqproxy seal -r RECIPIENT... [-R FILE]... [--allow-classical] -o OUT [IN]\n"
           "  encrypts IN (default stdin) to OUT in the age format (docs/sealing.md)\n"
           "  -r, --recipient R        age1pq1... (hybrid ML-KEM-768 + X25519) or age1... (X25519)\n"
           "  -R, --recipients-file F  one recipient a line ('#' comments)\n"
           "  --allow-classical        accept X25519 (age1...) recipients, which a future quantum\n"
           "                           computer can open: harvest now, decrypt later\n"
           "  -o, --out OUT            written to a temporary file, renamed into place when done\n");
    return 0;
}

int px_cmd_seal(int argc, char **argv)
{
    static px_age_recipient_t rs[MAX_RECIPIENTS];
    const char *out = NULL, *in = NULL, *v;
    int n = 0, allow_classical = 0, classical = 0, pq = 0;
    char err[256];

    for (int i = 1; i < argc; i++) {
        int r = 0;
        if (px_cli_is_help(argv[i]))
            return usage_seal();
        if (!strcmp(argv[i], "--allow-classical")) {
            allow_classical = 1;
        } else if ((r = opt2("seal", argc, argv, &i, "-r", "--recipient", &v)) > 0) {
            if (n == MAX_RECIPIENTS)
                return px_cli_usage_error("seal", "more than %d recipients", MAX_RECIPIENTS);
            if (px_age_parse_recipient(v, &rs[n], err, sizeof err) != 0)
                return px_cli_usage_error("seal", "recipient '%.40s...': %s", v, err);
            n++;
        } else if (!r && (r = opt2("seal", argc, argv, &i, "-R", "--recipients-file", &v)) > 0) {
            if (read_key_file("seal", v, parse_recipient_line, rs, sizeof rs[0], &n, MAX_RECIPIENTS))
                return 1;
        } else if (r || (r = out_or_input("seal", argc, argv, &i, &out, &in)) <= 0) {
            return r < 0 ? 2 : px_cli_unknown("seal", argv[i]);
        }
    }
    if (!n)
        return px_cli_usage_error("seal", "at least one recipient (-r or -R) is required");
    if (!out || !*out)
        return px_cli_usage_error("seal", "-o OUT is required");
    for (int i = 0; i < n; i++)
        rs[i].kind == PX_AGE_PQ ? pq++ : classical++;
    if (classical && !allow_classical)
        return px_cli_usage_error("seal", pq
            ? "refusing to mix %d X25519 recipient(s) with post-quantum ones: anyone who records the "
              "file can open it through the X25519 stanza once X25519 falls to a quantum computer "
              "(harvest now, decrypt later), so the post-quantum recipients would protect nothing; "
              "pass --allow-classical to accept that"
            : "%d X25519 recipient(s) and no post-quantum one: the file could be recorded now and "
              "opened by a future quantum computer; use age1pq1... recipients (keygen --alg age-pq) "
              "or pass --allow-classical to accept that", classical);
    return run_stream("seal", in ? in : "-", out, 0644, seal_fn, rs, n);
}

static int usage_open(void)
{
    printf("usage: pqproxy open -i IDENTITY_FILE... -o OUT [IN]\n"
           "  decrypts the age file IN (default stdin) to OUT (docs/sealing.md); every 64 KiB chunk\n"
           "  is authenticated, truncation and reordering detected; OUT appears (mode 0600) only\n"
           "  when the whole file opened\n"
           "  -i, --identity FILE   AGE-SECRET-KEY-1... / AGE-SECRET-KEY-PQ-1... lines ('#' comments)\n");
    return 0;
}

int px_cmd_open(int argc, char **argv)
{
    static px_age_identity_t ids[MAX_IDENTITIES];
    const char *out = NULL, *in = NULL, *v;
    int n = 0, ret;

    for (int i = 1; i < argc; i++) {
        int r = 0;
        if (px_cli_is_help(argv[i]))
            return usage_open();
        if ((r = opt2("open", argc, argv, &i, "-i", "--identity", &v)) > 0) {
            if (read_key_file("open", v, parse_identity_line, ids, sizeof ids[0], &n, MAX_IDENTITIES))
                return 1;
        } else if (r || (r = out_or_input("open", argc, argv, &i, &out, &in)) <= 0) {
            return r < 0 ? 2 : px_cli_unknown("open", argv[i]);
        }
    }
    if (!n)
        return px_cli_usage_error("open", "-i IDENTITY_FILE is required");
    if (!out || !*out)
        return px_cli_usage_error("open", "-o OUT is required");
    ret = run_stream("open", in ? in : "-", out, 0600, open_fn, ids, n);
    memset(ids, 0, sizeof ids);
    return ret;
}
