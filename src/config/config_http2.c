/* "http2" (config_http2.h, docs/config.md). */
#include "config/config_http2.h"
#include "core/errors.h"

#define P "http2"

/* key, default, min, max: RFC 9113's bounds where it sets them, otherwise
 * what one connection may reasonably hold */
#define HTTP2_FIELDS(XX)                                                        \
    XX(max_concurrent_streams, 100, 1, 10000)                                   \
    XX(initial_window_size, 65535, 1024, 2147483647)                            \
    XX(connection_window_size, 1048576, 65535, 2147483647)                      \
    XX(max_header_list_size, 65536, 1024, 1048576)                              \
    XX(max_frame_size, 16384, 16384, 16777215)                                  \
    XX(header_table_size, 4096, 0, 65536)                                       \
    XX(max_continuations, 8, 1, 1024)                                           \
    XX(max_queued_acks, 100, 1, 100000)                                         \
    XX(reset_budget, 200, 1, 100000)                                            \
    XX(reset_window_ms, 10000, 100, 3600000)                                    \
    XX(stream_buffer, 65536, 1024, 16777216)                                    \
    XX(connection_buffer, 1048576, 1024, 268435456)                             \
    XX(stall_timeout_ms, 30000, 100, 3600000)

static const char *const keys[] = {
#define XX(k, d, lo, hi) #k,
    HTTP2_FIELDS(XX)
#undef XX
    NULL
};

void px_config_http2_defaults(px_http2_config_t *h)
{
#define XX(k, d, lo, hi) h->k = d;
    HTTP2_FIELDS(XX)
#undef XX
}

int px_config_parse_http2(px_jv_t *j, const cJSON *o, px_http2_config_t *h)
{
    int r;

    if ((r = px_jv_object(j, o, P, keys)) < 0)
        return r;
#define XX(k, d, lo, hi)                                                        \
    if ((r = px_jv_u32(j, o, P, #k, lo, hi, &h->k)) < 0)                        \
        return r;
    HTTP2_FIELDS(XX)
#undef XX
    if (h->connection_buffer < h->stream_buffer)
        return px_jv_fail(j, P ".connection_buffer", "must be at least stream_buffer (%u)",
                          h->stream_buffer);
    return 0;
}
