/* `pqproxy sign-model`, `verify-model` and `open-model`
 * (docs/model-signing.md): a dual-signed manifest of a model directory,
 * its verification against the directory, and opening age-sealed files
 * into an empty directory, all or nothing. Every failure is one line on
 * stderr naming the file and the reason; exit 1 (2 for usage errors). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/age_cmd.h"
#include "cmd/certgen.h"
#include "cmd/cli.h"
#include "cmd/model_cmd.h"
#include "core/errors.h"
#include "core/jsonv.h"
#include "seal/age.h"
#include "seal/dsse.h"
#include "seal/manifest.h"

#define MAX_DEPTH 64
#define MAX_IDENTITIES 16
#define IO_CHUNK 65536

/* --- shared ------------------------------------------------------------------------- */

static int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pqproxy %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* PREFIX.ecdsa.pub and PREFIX.mldsa.pub as raw keys. */
static int load_pubs(const char *cmd, const char *prefix, uint8_t *ec, uint8_t *ml)
{
    px_sig_keyring_t *ring = px_sig_keyring_new();
    const uint8_t *e, *m;
    char err[300];
    int ret = 1;

    if (!ring || px_sig_keyring_add_files(ring, "model", prefix, err, sizeof err) != 0 ||
        px_sig_keyring_find(ring, "model", 5, &e, &m) < 0) {
        fail(cmd, "%s", ring ? err : "out of memory");
    } else {
        memcpy(ec, e, PX_SIG_ECDSA_PUB_LEN);
        memcpy(ml, m, PX_SIG_MLDSA_PUB_LEN);
        ret = 0;
    }
    px_sig_keyring_free(ring);
    return ret;
}

/* Reads the manifest, checks both signatures and parses it into m. */
static int load_manifest(const char *cmd, const char *path, const char *pub, px_manifest_t *m)
{
    static uint8_t ml[PX_SIG_MLDSA_PUB_LEN];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN];
    char err[600], *text = NULL;
    struct stat st;
    FILE *f = NULL;
    int ret = 1;

    px_manifest_init(m, PX_MD_SHA256);
    if (load_pubs(cmd, pub, ec, ml) != 0)
        return 1;
    if (!(f = fopen(path, "rb")) || fstat(fileno(f), &st) != 0) {
        fail(cmd, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_size > (off_t)PX_DSSE_MAX_ENVELOPE) {
        fail(cmd, "%s: not a regular file of at most %u bytes", path, PX_DSSE_MAX_ENVELOPE);
    } else if (!(text = malloc((size_t)st.st_size + 1))) {
        fail(cmd, "%s: out of memory", path);
    } else if (fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fail(cmd, "%s: read error", path);
    } else if (px_manifest_verify(text, (size_t)st.st_size, path, ec, ml, m, err, sizeof err) != 0) {
        fail(cmd, "%s", err);
    } else {
        ret = 0;
    }
    if (f)
        fclose(f);
    free(text);
    return ret;
}

static void manifest_id(const char *path, char *out)
{
    uint8_t d[32];
    static const char hx[] = "0123456789abcdef";
    if (px_manifest_file_digest(path, d) != 0) {
        strcpy(out, "?");
        return;
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

/* --- directory walk ------------------------------------------------------------------- */

typedef struct {
    const char *cmd, *root;
    px_manifest_t *m;
    int follow;          /* sealed input: follow symlinks, skip top-level "..*" (Kubernetes volumes) */
    size_t visited;
} walk_t;

/* Every regular file under dfd (which it closes) into w->m with its size;
 * symlinks (unless following) and special files refused. */
static int walk(walk_t *w, int dfd, const char *rel, int depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    char path[PX_MANIFEST_MAX_PATH + PX_MANIFEST_MAX_NAME + 2];
    int ret = 0;

    if (!d) {
        close(dfd);
        return fail(w->cmd, "%s/%s: %s", w->root, rel, strerror(errno));
    }
    while (!ret && (errno = 0, de = readdir(d))) {
        struct stat st;
        const char *why;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (w->follow && !*rel && !strncmp(de->d_name, "..", 2))
            continue;
        snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (++w->visited > PX_MANIFEST_MAX_FILES) {
            ret = fail(w->cmd, "%s: more than %d entries", w->root, PX_MANIFEST_MAX_FILES);
        } else if ((why = px_manifest_path_problem(path))) {
            char shown[PX_MANIFEST_MAX_PATH + 8];
            px_jv_printable(shown, sizeof shown, path, PX_MANIFEST_MAX_PATH);
            ret = fail(w->cmd, "%s/%s: refused: the path has %s", w->root, shown, why);
        } else if (fstatat(dirfd(d), de->d_name, &st, w->follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
            ret = fail(w->cmd, "%s/%s: %s", w->root, path, strerror(errno));
        } else if (S_ISLNK(st.st_mode)) {
            ret = fail(w->cmd, "%s/%s: refused: a symbolic link (not followed: a manifest lists "
                       "regular files only)", w->root, path);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = depth >= MAX_DEPTH ? -1
                      : openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
                               (w->follow ? 0 : O_NOFOLLOW));
            if (sub < 0)
                ret = fail(w->cmd, "%s/%s: %s", w->root, path,
                           depth >= MAX_DEPTH ? "nested too deep" : strerror(errno));
            else
                ret = walk(w, sub, path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            if (!px_manifest_add(w->m, path, (uint64_t)st.st_size))
                ret = fail(w->cmd, "out of memory");
        } else {
            ret = fail(w->cmd, "%s/%s: refused: a special file (device, FIFO or socket)", w->root,
                       path);
        }
    }
    if (!ret && errno)
        ret = fail(w->cmd, "%s/%s: %s", w->root, rel, strerror(errno));
    closedir(d);
    return ret;
}

static int scan(const char *cmd, const char *dir, int follow, px_manifest_t *m)
{
    walk_t w = { .cmd = cmd, .root = dir, .m = m, .follow = follow };
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        return fail(cmd, "%s: %s", dir, strerror(errno));
    if (walk(&w, dfd, "", 0) != 0)
        return 1;
    px_manifest_sort(m);
    return 0;
}

/* The digest of root/path, which must still be a regular file of `size`
 * bytes. 0, or 1 after saying why. */
static int hash_file(const char *cmd, const char *root, const char *path, px_md_alg_t alg,
                     uint64_t size, uint8_t *out)
{
    static uint8_t buf[IO_CHUNK];
    char full[PATH_MAX];
    struct stat st;
    uint64_t total = 0;
    ssize_t n;
    px_md_t h;
    int fd;

    snprintf(full, sizeof full, "%s/%s", root, path);
    if ((fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return fail(cmd, "%s: %s", full, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || px_md_init(&h, alg) != 0) {
        close(fd);
        return fail(cmd, "%s: not a regular file any more", full);
    }
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        px_md_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    px_md_final(&h, out);
    close(fd);
    if (n < 0)
        return fail(cmd, "%s: %s", full, strerror(errno));
    if (total != size)
        return fail(cmd, "%s: changed while it was read (%llu bytes, then %llu)", full,
                    (unsigned long long)size, (unsigned long long)total);
    return 0;
}

/* --- sign-model ------------------------------------------------------------------------- */

static int usage_sign_model(void)
{
    printf("usage: pqproxy sign-model DIR --key PREFIX [--digest sha256|sha384] --out MANIFEST\n"
           "  writes MANIFEST: every regular file under DIR (relative path, size, digest) as an\n"
           "  in-toto statement (OpenSSF model-signing predicate) in a DSSE envelope signed with\n"
           "  PREFIX.ecdsa.key (ECDSA P-384) and PREFIX.mldsa.key (ML-DSA-87); see\n"
           "  docs/model-signing.md. Symbolic links, special files and unclean names are refused;\n"
           "  MANIFEST must not lie inside DIR. Prints the manifest's SHA-256 (the model's id).\n");
    return 0;
}

/* 1 when path's directory is dir or lies under it (both resolved). */
static int inside(const char *dir, const char *path)
{
    char rd[PATH_MAX], rp[PATH_MAX], parent[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;

    snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path + 1) : 1,
             slash ? path : ".");
    if (!realpath(dir, rd) || !realpath(parent, rp))
        return 0;
    n = strlen(rd);
    return !strncmp(rd, rp, n) && (rp[n] == '\0' || rp[n] == '/' || (n == 1 && rd[0] == '/'));
}

int px_cmd_sign_model(int argc, char **argv)
{
    const char *dir = NULL, *key = NULL, *digest = "sha256", *out = NULL;
    char err[300], rd[PATH_MAX], id[65];
    px_sig_signer_t *s = NULL;
    px_manifest_t m;
    px_buf_t env;
    int ret = 1;

    for (int i = 1; i < argc; i++) {
        int r;
        if (px_cli_is_help(argv[i]))
            return usage_sign_model();
        if ((r = px_cli_opt("sign-model", argc, argv, &i, "--key", &key)) == 0 &&
            (r = px_cli_opt("sign-model", argc, argv, &i, "--digest", &digest)) == 0 &&
            (r = px_cli_opt("sign-model", argc, argv, &i, "--out", &out)) == 0) {
            if (argv[i][0] == '-' || dir)
                return px_cli_unknown("sign-model", argv[i]);
            dir = argv[i];
        }
        if (r < 0)
            return 2;
    }
    if (!dir || !key || !out)
        return px_cli_usage_error("sign-model", "DIR, --key PREFIX and --out MANIFEST are required");
    if (strcmp(digest, "sha256") && strcmp(digest, "sha384"))
        return px_cli_usage_error("sign-model", "--digest must be sha256 or sha384, not '%s'", digest);
    if (inside(dir, out))
        return fail("sign-model", "%s: refused: the manifest would lie inside %s and list itself; "
                    "write it elsewhere", out, dir);
    if (!realpath(dir, rd))
        return fail("sign-model", "%s: %s", dir, strerror(errno));
    px_manifest_init(&m, strcmp(digest, "sha384") ? PX_MD_SHA256 : PX_MD_SHA384);
    px_buf_init(&env, 0);
    if (px_sig_signer_load(key, "model", &s, err, sizeof err) != 0) {
        fail("sign-model", "%s", err);
        goto out;
    }
    if (!(m.name = strdup(strrchr(rd, '/')[1] ? strrchr(rd, '/') + 1 : "model")))
        goto out;
    if (scan("sign-model", dir, 0, &m) != 0)
        goto out;
    if (!m.n) {
        fail("sign-model", "%s: no regular file under it", dir);
        goto out;
    }
    for (size_t i = 0; i < m.n; i++)
        if (hash_file("sign-model", dir, m.e[i].path, m.alg, m.e[i].size, m.e[i].digest) != 0)
            goto out;
    if (px_manifest_sign(&m, s, &env, err, sizeof err) != 0) {
        fail("sign-model", "%s", err);
        goto out;
    }
    if (px_pem_write_file(out, px_buf_ptr(&env), px_buf_size(&env), 0644, 1) != 0) {
        fail("sign-model", "%s: %s", out, strerror(errno));
        goto out;
    }
    manifest_id(out, id);
    printf("wrote %s: %zu files (%s), manifest sha256:%s\n", out, m.n, px_md_alg_name(m.alg), id);
    ret = 0;
out:
    px_sig_signer_free(s);
    px_manifest_free(&m);
    px_buf_free(&env);
    return ret;
}

/* --- verify-model --------------------------------------------------------------------- */

static int usage_verify_model(void)
{
    printf("usage: pqproxy verify-model DIR --pub PREFIX --manifest MANIFEST\n"
           "  checks both signatures of MANIFEST (PREFIX.ecdsa.pub and PREFIX.mldsa.pub), then that\n"
           "  DIR holds exactly the manifest's files, each with its size and digest.\n"
           "  exit 0 and 'OK ...'; exit 1 and one line naming the file and the reason\n");
    return 0;
}

/* The sets of paths must be equal: the first difference, by path. */
static int same_files(const char *cmd, const char *dir, const char *suffix,
                      const px_manifest_t *want, const px_manifest_t *have, const char *extra_what)
{
    size_t i = 0, k = 0;
    while (i < want->n || k < have->n) {
        int c = i == want->n ? 1 : k == have->n ? -1 : strcmp(want->e[i].path, have->e[k].path);
        if (c < 0)
            return fail(cmd, "%s/%s%s: missing (listed in the manifest)", dir, want->e[i].path,
                        suffix);
        if (c > 0)
            return fail(cmd, "%s/%s%s: %s", dir, have->e[k].path, suffix, extra_what);
        i++;
        k++;
    }
    return 0;
}

int px_cmd_verify_model(int argc, char **argv)
{
    const char *dir = NULL, *pub = NULL, *man = NULL;
    px_manifest_t m, found;
    uint8_t d[PX_MANIFEST_MAX_DIGEST];
    char id[65];
    int ret = 1;

    for (int i = 1; i < argc; i++) {
        int r;
        if (px_cli_is_help(argv[i]))
            return usage_verify_model();
        if ((r = px_cli_opt("verify-model", argc, argv, &i, "--pub", &pub)) == 0 &&
            (r = px_cli_opt("verify-model", argc, argv, &i, "--manifest", &man)) == 0) {
            if (argv[i][0] == '-' || dir)
                return px_cli_unknown("verify-model", argv[i]);
            dir = argv[i];
        }
        if (r < 0)
            return 2;
    }
    if (!dir || !pub || !man)
        return px_cli_usage_error("verify-model", "DIR, --pub PREFIX and --manifest MANIFEST are "
                                  "required");
    px_manifest_init(&found, PX_MD_SHA256);
    if (load_manifest("verify-model", man, pub, &m) != 0 ||
        scan("verify-model", dir, 0, &found) != 0 ||
        same_files("verify-model", dir, "", &m, &found, "not in the manifest (extra file)") != 0)
        goto out;
    for (size_t i = 0; i < m.n; i++)
        if (m.e[i].size != found.e[i].size) {
            fail("verify-model", "%s/%s: size %llu bytes, the manifest says %llu", dir,
                 m.e[i].path, (unsigned long long)found.e[i].size,
                 (unsigned long long)m.e[i].size);
            goto out;
        }
    for (size_t i = 0; i < m.n; i++) {
        if (hash_file("verify-model", dir, m.e[i].path, m.alg, m.e[i].size, d) != 0)
            goto out;
        if (memcmp(d, m.e[i].digest, m.alg)) {
            fail("verify-model", "%s/%s: %s digest differs from the manifest", dir, m.e[i].path,
                 m.alg == PX_MD_SHA384 ? "SHA-384" : "SHA-256");
            goto out;
        }
    }
    manifest_id(man, id);
    printf("OK %s: %zu files match %s (model %s, manifest sha256:%s)\n", dir, m.n, man, m.name, id);
    ret = 0;
out:
    px_manifest_free(&m);
    px_manifest_free(&found);
    return ret;
}

/* --- open-model ------------------------------------------------------------------------ */

static int usage_open_model(void)
{
    printf("usage: pqproxy open-model --manifest MANIFEST --pub PREFIX --identity-file ID\n"
           "         --in SEALED_DIR --out DIR\n"
           "  checks both signatures of MANIFEST, then opens SEALED_DIR/<path>.age (age format)\n"
           "  into DIR/<path> for every file of the manifest, checking each size and digest.\n"
           "  DIR must be absent or empty. All or nothing: on any failure everything written\n"
           "  is removed, DIR is left empty, and one line names the file and the reason (exit 1).\n"
           "  A sealed file the manifest does not list is refused (docs/model-signing.md).\n");
    return 0;
}

/* SIGTERM, SIGINT or SIGHUP while opening: the next write fails (a blocked
 * read returns EINTR, no SA_RESTART), so the failure path removes what was
 * written, as for any other failure. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* The output stream: counts and hashes what px_age_open writes. */
typedef struct {
    int fd;
    px_md_t md;
    uint64_t n, limit;
    int too_big;
} sink_t;

static ssize_t sink_write(void *c, const char *buf, size_t size)
{
    sink_t *s = c;
    size_t done = 0;

    if (stop_signal) {
        errno = EINTR;
        return -1;
    }
    if (size > s->limit - s->n) {
        s->too_big = 1;
        errno = EFBIG;
        return -1;
    }
    while (done < size) {
        ssize_t w = write(s->fd, buf + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    px_md_update(&s->md, buf, size);
    s->n += size;
    return (ssize_t)size;
}

/* Removes everything under dfd (not following symlinks); dfd is closed. */
static void rm_tree(int dfd)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;

    if (!d) {
        close(dfd);
        return;
    }
    rewinddir(d); /* a dup shares its offset with the descriptor it copies */
    while ((de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rm_tree(sub);
            unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    closedir(d);
}

/* Opens sealed into outfd/e->path; 0, or 1 after saying why. */
static int open_one(const char *in_dir, const char *out_dir, int outfd,
                    const px_manifest_entry_t *e, px_md_alg_t alg, const px_age_identity_t *ids,
                    int nids)
{
    static const cookie_io_functions_t fns = { .write = sink_write };
    char src[PATH_MAX], dirs[PX_MANIFEST_MAX_PATH + 1], err[512];
    uint8_t d[PX_MANIFEST_MAX_DIGEST];
    sink_t s = { .fd = -1, .limit = e->size };
    FILE *in = NULL, *out = NULL;
    int ret = 1, r;

    snprintf(src, sizeof src, "%s/%s.age", in_dir, e->path);
    snprintf(dirs, sizeof dirs, "%s", e->path);
    for (char *p = strchr(dirs, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdirat(outfd, dirs, 0777) != 0 && errno != EEXIST)
            return fail("open-model", "%s/%s: %s", out_dir, dirs, strerror(errno));
        *p = '/';
    }
    if (!(in = fopen(src, "rb")))
        return fail("open-model", "%s: %s", src, strerror(errno));
    if ((s.fd = openat(outfd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0666)) < 0) {
        fail("open-model", "%s/%s: %s", out_dir, e->path, strerror(errno));
        goto out;
    }
    if (px_md_init(&s.md, alg) != 0 || !(out = fopencookie(&s, "w", fns))) {
        fail("open-model", "%s/%s: out of memory", out_dir, e->path);
        goto out;
    }
    r = px_age_open(in, out, ids, nids, err, sizeof err);
    if (!r && fflush(out) != 0)
        r = PX_EIO;
    fclose(out);
    out = NULL;
    px_md_final(&s.md, d);
    if (stop_signal)
        fail("open-model", "%s/%s: interrupted by signal %d", out_dir, e->path, (int)stop_signal);
    else if (s.too_big)
        fail("open-model", "%s: opens to more than the manifest's %llu bytes for %s", src,
             (unsigned long long)e->size, e->path);
    else if (r)
        fail("open-model", "%s: %s", src, *err ? err : strerror(errno));
    else if (s.n != e->size)
        fail("open-model", "%s: opens to %llu bytes, the manifest says %llu for %s", src,
             (unsigned long long)s.n, (unsigned long long)e->size, e->path);
    else if (memcmp(d, e->digest, alg))
        fail("open-model", "%s: the opened content's %s digest differs from the manifest's for %s",
             src, alg == PX_MD_SHA384 ? "SHA-384" : "SHA-256", e->path);
    else if (fsync(s.fd) != 0)
        fail("open-model", "%s/%s: %s", out_dir, e->path, strerror(errno));
    else
        ret = 0;
out:
    if (s.fd >= 0)
        close(s.fd);
    fclose(in);
    return ret;
}

/* DIR absent (created) or an empty directory: its descriptor, or -1 after saying why. */
static int empty_out_dir(const char *dir)
{
    int fd;
    DIR *d;
    struct dirent *de;

    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fail("open-model", "%s: %s", dir, strerror(errno));
        return -1;
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        fail("open-model", "%s: %s", dir, errno == ENOTDIR || errno == ELOOP
             ? "not a directory" : strerror(errno));
        return -1;
    }
    if (!(d = fdopendir(dup(fd)))) {
        close(fd);
        fail("open-model", "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            fail("open-model", "%s: refused: not empty (holds %.100s); open-model writes only "
                 "into an absent or empty directory", dir, de->d_name);
            close(fd);
            fd = -1;
            break;
        }
    closedir(d);
    return fd;
}

int px_cmd_open_model(int argc, char **argv)
{
    static px_age_identity_t ids[MAX_IDENTITIES];
    const char *man = NULL, *pub = NULL, *in = NULL, *out = NULL, *idf;
    px_manifest_t m, sealed;
    int nids = 0, outfd = -1, ret = 1;
    char id[65];

    for (int i = 1; i < argc; i++) {
        int r;
        if (px_cli_is_help(argv[i]))
            return usage_open_model();
        if ((r = px_cli_opt("open-model", argc, argv, &i, "--identity-file", &idf)) > 0) {
            if (px_age_read_identities("open-model", idf, ids, &nids, MAX_IDENTITIES) != 0)
                return 1;
            continue;
        }
        if (r == 0 && (r = px_cli_opt("open-model", argc, argv, &i, "--manifest", &man)) == 0 &&
            (r = px_cli_opt("open-model", argc, argv, &i, "--pub", &pub)) == 0 &&
            (r = px_cli_opt("open-model", argc, argv, &i, "--in", &in)) == 0 &&
            (r = px_cli_opt("open-model", argc, argv, &i, "--out", &out)) == 0)
            return px_cli_unknown("open-model", argv[i]);
        if (r < 0)
            return 2;
    }
    if (!man || !pub || !nids || !in || !out)
        return px_cli_usage_error("open-model", "--manifest, --pub, --identity-file, --in and "
                                  "--out are required");
    px_manifest_init(&sealed, PX_MD_SHA256);
    if (load_manifest("open-model", man, pub, &m) != 0)
        goto done;
    /* every input is accounted for before anything is written */
    if (scan("open-model", in, 1, &sealed) != 0)
        goto done;
    for (size_t i = 0; i < sealed.n; i++) {
        char *p = sealed.e[i].path;
        size_t l = strlen(p);
        if (l <= 4 || strcmp(p + l - 4, ".age")) {
            fail("open-model", "%s/%s: refused: not a .age file of the manifest (extra file)", in, p);
            goto done;
        }
        p[l - 4] = '\0';
    }
    px_manifest_sort(&sealed);
    if (same_files("open-model", in, ".age", &m, &sealed, "refused: a sealed file the manifest "
                   "does not list (extra file)") != 0)
        goto done;
    if ((outfd = empty_out_dir(out)) < 0)
        goto done;
    catch_stop_signals();
    for (size_t i = 0; i < m.n; i++)
        if (open_one(in, out, outfd, &m.e[i], m.alg, ids, nids) != 0 ||
            (stop_signal && fail("open-model", "%s: interrupted by signal %d", out,
                                  (int)stop_signal))) {
            rm_tree(dup(outfd));
            fprintf(stderr, "pqproxy open-model: %s left empty\n", out);
            goto done;
        }
    if (fsync(outfd) != 0) {
        rm_tree(dup(outfd));
        fail("open-model", "%s: %s (left empty)", out, strerror(errno));
        goto done;
    }
    manifest_id(man, id);
    printf("OK opened %zu files of model %s into %s (manifest sha256:%s)\n", m.n, m.name, out, id);
    ret = 0;
done:
    if (outfd >= 0)
        close(outfd);
    memset(ids, 0, sizeof ids);
    px_manifest_free(&m);
    px_manifest_free(&sealed);
    return ret;
}
