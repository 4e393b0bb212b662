/* gRPC health checking on the admin port (grpc_health.h). */
#include "proxy/grpc_health.h"

#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "config/config_http2.h"
#include "http/h2.h"
#include "http/msg.h"

#define SLOTS 4                  /* calls at once on one probe connection */
#define MAX_MESSAGE 1024         /* a HealthCheckRequest is a service name */
#define CHECK_PATH "/grpc.health.v1.Health/Check"

enum { SERVING = 1, NOT_SERVING = 2 };           /* HealthCheckResponse.ServingStatus */

typedef struct {
    int used, check, waiting, answered;
    int32_t id;
    uint8_t body[5 + MAX_MESSAGE];
    size_t len;
    int over;                    /* more than one small message came */
} slot_t;

struct px_ghealth {
    px_h2_t *h2;
    void (*ask_ready)(void *ud);
    void *ud;
    int asking;                  /* ask_ready called, px_ghealth_ready not yet */
    int failed;                  /* a call could not be answered: end the connection */
    slot_t slot[SLOTS];
};

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int px_ghealth_preface(const void *p, size_t n)
{
    size_t k = n < sizeof preface - 1 ? n : sizeof preface - 1;
    return k > 0 && !memcmp(p, preface, k);
}

/* --- the request message -------------------------------------------------------- */

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return PX_EPARSE;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return PX_EPARSE;
}

int px_ghealth_parse_request(const uint8_t *p, size_t n, char *svc, size_t cap)
{
    const uint8_t *end = p + n;
    uint64_t key, v;

    if (!cap)
        return PX_EPARSE;
    svc[0] = '\0';
    while (p < end) {
        if (varint(&p, end, &key) != 0 || (key >> 3) == 0)
            return PX_EPARSE;
        switch (key & 7) {
        case 0:
            if (varint(&p, end, &v) != 0)
                return PX_EPARSE;
            break;
        case 1:
        case 5:
            v = (key & 7) == 1 ? 8 : 4;
            if ((uint64_t)(end - p) < v)
                return PX_EPARSE;
            p += v;
            break;
        case 2:
            if (varint(&p, end, &v) != 0 || (uint64_t)(end - p) < v)
                return PX_EPARSE;
            if ((key >> 3) == 1) {          /* service: the last one wins, as in protobuf */
                if (v >= cap || memchr(p, '\0', (size_t)v))
                    return PX_EPARSE;
                memcpy(svc, p, (size_t)v);
                svc[v] = '\0';
            }
            p += v;
            break;
        default:
            return PX_EPARSE;
        }
    }
    return 0;
}

/* --- answers -------------------------------------------------------------------- */

/* A trailers-only error, or grpc-status 0 with a HealthCheckResponse. */
static void answer(px_ghealth_t *g, slot_t *s, int grpc_status, int serving)
{
    static const char *const codes[] = { [0] = "0", [3] = "3", [5] = "5", [12] = "12" };
    uint8_t msg[7] = { 0, 0, 0, 0, 2, 0x08, (uint8_t)serving };
    px_msg_t head, tr;
    int rc;

    s->waiting = 0;
    s->answered = 1;
    px_msg_init(&head, 1024, 8);
    px_msg_init(&tr, 1024, 8);
    head.status = 200;
    rc = px_msg_add(&head, "content-type", 12, "application/grpc", 16);
    if (grpc_status) {
        head.end_stream = 1;
        if (rc == 0)
            rc = px_msg_add(&head, "grpc-status", 11, codes[grpc_status], strlen(codes[grpc_status]));
    }
    if (rc == 0)
        rc = px_h2_respond(g->h2, s->id, &head);
    if (rc == 0 && !grpc_status) {
        px_msg_begin_trailers(&tr);
        rc = px_msg_add(&tr, "grpc-status", 11, "0", 1);
        if (rc == 0 && px_h2_send(g->h2, s->id, msg, sizeof msg) != (int64_t)sizeof msg)
            rc = PX_ENOMEM;
        if (rc == 0)
            rc = px_h2_end(g->h2, s->id, &tr);
    }
    px_msg_free(&head);
    px_msg_free(&tr);
    if (rc != 0 && px_h2_reset(g->h2, s->id, NGHTTP2_INTERNAL_ERROR) != 0)
        g->failed = 1;
}

void px_ghealth_ready(px_ghealth_t *g, int ready)
{
    g->asking = 0;
    for (int i = 0; i < SLOTS; i++)
        if (g->slot[i].used && g->slot[i].waiting)
            answer(g, &g->slot[i], 0, ready ? SERVING : NOT_SERVING);
}

/* --- the session's callbacks ------------------------------------------------------ */

static void on_request(void *ud, int32_t id, const px_msg_t *head)
{
    px_ghealth_t *g = ud;
    px_str_t method = px_msg_get(head, PX_MSG_METHOD), path = px_msg_get(head, PX_MSG_PATH);
    slot_t *s = NULL;

    for (int i = 0; i < SLOTS && !s; i++)
        if (!g->slot[i].used)
            s = &g->slot[i];
    if (!s || px_h2_set_stream_data(g->h2, id, s) != 0) {   /* SETTINGS allow SLOTS */
        if (px_h2_reset(g->h2, id, NGHTTP2_REFUSED_STREAM) != 0)
            g->failed = 1;
        return;
    }
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->id = id;
    s->check = method.n == 4 && !memcmp(method.p, "POST", 4) && path.n == sizeof CHECK_PATH - 1 &&
               !memcmp(path.p, CHECK_PATH, path.n);
}

static void on_data(void *ud, int32_t id, void *sd, const uint8_t *p, size_t n)
{
    px_ghealth_t *g = ud;
    slot_t *s = sd;

    if (s && !s->over) {
        if (n > sizeof s->body - s->len) {
            s->over = 1;
        } else {
            memcpy(s->body + s->len, p, n);
            s->len += n;
        }
    }
    if (px_h2_consumed(g->h2, id, n) != 0)
        g->failed = 1;
}

static void on_end(void *ud, int32_t id, void *sd, const px_msg_t *head)
{
    px_ghealth_t *g = ud;
    slot_t *s = sd;
    char svc[256];
    (void)id;
    (void)head;

    if (!s)
        return;
    if (!s->check) {
        answer(g, s, 12, 0);            /* UNIMPLEMENTED: Watch, or not the health service */
        return;
    }
    /* one uncompressed gRPC message: flag 0, 4-byte length, the payload */
    if (s->over || s->len < 5 || s->body[0] != 0 ||
        ((size_t)s->body[1] << 24 | (size_t)s->body[2] << 16 | (size_t)s->body[3] << 8 | s->body[4]) !=
            s->len - 5 ||
        px_ghealth_parse_request(s->body + 5, s->len - 5, svc, sizeof svc) != 0) {
        answer(g, s, 3, 0);             /* INVALID_ARGUMENT */
        return;
    }
    if (!strcmp(svc, "liveness")) {
        answer(g, s, 0, SERVING);
    } else if (!svc[0] || !strcmp(svc, "readiness")) {
        s->waiting = 1;
        if (!g->asking) {
            g->asking = 1;
            g->ask_ready(g->ud);        /* may answer at once (px_ghealth_ready) */
        }
    } else {
        answer(g, s, 5, 0);             /* NOT_FOUND */
    }
}

static void on_drained(void *ud, int32_t id, void *sd, size_t n)
{
    (void)ud;
    (void)id;
    (void)sd;
    (void)n;
}

static void on_close(void *ud, int32_t id, void *sd, uint32_t code)
{
    px_ghealth_t *g = ud;
    slot_t *s = sd;
    int open = 0;
    (void)id;
    (void)code;

    if (s)
        s->used = 0;
    for (int i = 0; i < SLOTS; i++)
        open += g->slot[i].used;
    /* one call per probe connection, as HTTP/1.1's one request: say so */
    if (!open && px_h2_goaway(g->h2, NGHTTP2_NO_ERROR) != 0)
        g->failed = 1;
}

static const px_h2_callbacks_t callbacks = { on_request, on_data, on_end, on_drained, on_close };

/* --- the session ------------------------------------------------------------------ */

px_ghealth_t *px_ghealth_new(void (*ask_ready)(void *ud), void *ud)
{
    px_ghealth_t *g = calloc(1, sizeof *g);
    px_http2_config_t cfg;

    if (!g)
        return NULL;
    px_config_http2_defaults(&cfg);
    cfg.max_concurrent_streams = SLOTS;
    cfg.max_header_list_size = 8192;
    cfg.stream_buffer = cfg.connection_buffer = 4096;
    g->ask_ready = ask_ready;
    g->ud = ud;
    if (px_h2_new(&cfg, &callbacks, g, NULL, &g->h2) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

void px_ghealth_free(px_ghealth_t *g)
{
    if (!g)
        return;
    px_h2_free(g->h2);
    free(g);
}

int px_ghealth_input(px_ghealth_t *g, const void *p, size_t n)
{
    int rc = px_h2_input(g->h2, p, n);
    return rc == 0 && g->failed ? PX_EPARSE : rc;
}

int px_ghealth_output(px_ghealth_t *g, px_buf_t *out)
{
    return px_h2_output(g->h2, out, 0);
}

int px_ghealth_done(const px_ghealth_t *g)
{
    return g->failed || px_h2_want_close(g->h2);
}
