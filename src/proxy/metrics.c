/* Metrics aggregation and the Prometheus text format (see metrics.h). */
#include "proxy/metrics.h"
#include "net/tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "core/errors.h"

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double bounds[PX_M_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

/* every suite tls.ciphers can enable (tls_ciphers.c), TLS 1.3 then 1.2 */
static const char *const cipher_names[PX_M_CIPHERS] = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "other",
};

static const char *const method_names[PX_M_METHODS] = {
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "other",
};

/* px_tls_info_t.cert_key values (tls.c cert_key_type) */
static const char *const cert_key_names[PX_M_CERT_KEYS] = {
    "ECDSA-P256", "ECDSA-P384", "ECDSA-P521", "RSA", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87",
    "other" };

static const char *const class_names[PX_M_CLASSES] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
/* In px_h2_stats_t's order, after its streams counter (h2_session.c). */
static const char *const h2_event_names[PX_M_H2_EVENTS] = {
    "refused_vetting", "refused_header_size", "refused_concurrency", "reset_by_client",
    "rapid_reset_goaway", "continuation_flood", "ack_flood", "stalled_reset", "connection_error",
};

static const char *const hs_fail_names[PX_M_HS_FAIL] = {
    "pq_policy_refused", "no_common_group", "no_common_sigalg", "malformed_hello", "illegal_parameter",
    "failed", "timeout" };
_Static_assert(PX_HS_FAILED == PX_TLS_FAIL_OTHER - 1 && PX_HS_PQ_REFUSED == PX_TLS_FAIL_PQ_POLICY - 1,
               "handshake failure labels follow px_tls_fail_t");
static const char *const up_err_names[PX_M_UP_ERR] = { "connect", "reset", "timeout", "bad_response",
                                                       "queue_timeout" };

void px_m_observe(px_hist_t *h, double seconds)
{
    int i = 0;
    while (i < PX_M_BUCKETS - 1 && seconds > bounds[i])
        i++;
    px_m_inc(&h->buckets[i]);
    px_m_inc(&h->count);
    px_m_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

static int same_route(const px_route_t *a, const px_route_t *b)
{
    return a->grpc == b->grpc && !strcmp(a->prefix, b->prefix);
}

void px_m_route_rows(px_config_t *next, const px_config_t *prev, px_metrics_t *const *m, int nm)
{
    unsigned char taken[PX_M_ROUTES] = { 0 };
    int unkept[PX_MAX_ROUTES], nunkept = 0, row = 1;

    for (int i = 0; i < prev->route_count; i++)    /* rows prev's requests may still count into */
        taken[prev->routes[i].metrics_row] = 1;
    for (int i = 0; i < next->route_count; i++) {
        px_route_t *rt = &next->routes[i];
        rt->metrics_row = 0;
        for (int k = 0; k < prev->route_count && !rt->metrics_row; k++)
            if (same_route(rt, &prev->routes[k]))
                rt->metrics_row = prev->routes[k].metrics_row;
        if (!rt->metrics_row)
            unkept[nunkept++] = i;
    }
    for (int i = 0; i < nunkept; i++) {
        while (taken[row])          /* prev used at most half the rows: one is free */
            row++;
        taken[row] = 1;
        next->routes[unkept[i]].metrics_row = row;
        for (int w = 0; w < nm; w++)
            for (int a = 0; a < PX_M_METHODS; a++)
                for (int c = 0; c < PX_M_CLASSES; c++)
                    px_m_set(&m[w]->requests[row][a][c], 0);
    }
}

int px_m_group_index(uint16_t group)
{
    const uint16_t *ids;
    int n = px_group_all(&ids);
    for (int i = 0; i < n && i < PX_M_GROUP_OTHER; i++)
        if (ids[i] == group)
            return i;
    return PX_M_GROUP_OTHER;
}

int px_m_cipher_index(const char *c)
{
    /* IANA names, as px_tls_get_info reports them */
    for (int i = 0; c && i < PX_M_CIPHERS - 1; i++)
        if (!strcmp(c, cipher_names[i]))
            return i;
    return PX_M_CIPHERS - 1;
}

int px_m_method_index(const char *m)
{
    for (int i = 0; i < PX_M_METHODS - 1; i++)
        if (!strcmp(m, method_names[i]))
            return i;
    return PX_M_METHODS - 1;
}

int px_m_cert_key_index(const char *key)
{
    for (int i = 0; key && i < PX_M_CERT_KEYS - 1; i++)
        if (!strcmp(key, cert_key_names[i]))
            return i;
    return PX_M_CERT_KEYS - 1;
}

static uint64_t sum(px_metrics_t *const *w, int n, size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += px_m_get((const uint64_t *)((const char *)w[i] + off));
    return s;
}

#define SUM(field) sum(w, n, offsetof(px_metrics_t, field))

static void help(px_buf_t *o, const char *name, const char *type, const char *text)
{
    px_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void hist(px_buf_t *o, px_metrics_t *const *w, int n, size_t off, const char *name,
                 const char *text)
{
    uint64_t cum = 0;
    help(o, name, "histogram", text);
    for (int b = 0; b < PX_M_BUCKETS; b++) {
        cum += sum(w, n, off + offsetof(px_hist_t, buckets) + (size_t)b * sizeof(uint64_t));
        if (b < PX_M_BUCKETS - 1)
            px_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b], (unsigned long long)cum);
        else
            px_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    px_buf_printf(o, "%s_sum %.6f\n%s_count %llu\n", name,
                  (double)sum(w, n, off + offsetof(px_hist_t, sum_us)) / 1e6, name,
                  (unsigned long long)sum(w, n, off + offsetof(px_hist_t, count)));
}

/* A label value from a file name: Prometheus escapes for '\\', '"' and newline. */
static void label_value(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

static void cert_metrics(px_buf_t *o, px_metrics_t *const *w, int n, const px_metrics_global_t *g)
{
    char file[512];

    help(o, "pqproxy_tls_certificates_served_total", "counter",
         "Completed handshakes by the key type of the certificate served.");
    for (int k = 0; k < PX_M_CERT_KEYS; k++) {
        uint64_t v = SUM(hs_cert_key[k]);
        if (v || k < PX_M_CERT_KEYS - 1)
            px_buf_printf(o, "pqproxy_tls_certificates_served_total{key=\"%s\"} %llu\n",
                          cert_key_names[k], (unsigned long long)v);
    }
    help(o, "pqproxy_tls_certificate_expiry_timestamp_seconds", "gauge",
         "notAfter of each served certificate (the leaf of tls.certificates[i].cert), Unix time.");
    for (int i = 0; i < g->cert_count; i++) {
        label_value(file, sizeof file, g->certs[i].file);
        px_buf_printf(o, "pqproxy_tls_certificate_expiry_timestamp_seconds{cert=\"%s\",key=\"%s\"} %lld\n",
                      file, g->certs[i].key, (long long)g->certs[i].not_after);
    }
    help(o, "pqproxy_tls_ocsp_response_next_update_timestamp_seconds", "gauge",
         "nextUpdate of the OCSP response stapled for each certificate with an ocsp_response, "
         "Unix time (0: the file failed its checks at a reload); past it nothing is stapled.");
    for (int i = 0; i < g->cert_count; i++) {
        if (!g->certs[i].has_ocsp)
            continue;
        label_value(file, sizeof file, g->certs[i].file);
        px_buf_printf(o, "pqproxy_tls_ocsp_response_next_update_timestamp_seconds{cert=\"%s\",key=\"%s\"} %lld\n",
                      file, g->certs[i].key, (long long)g->certs[i].ocsp_next_update);
    }
}

int px_metrics_render(px_buf_t *o, px_metrics_t *const *w, int n, const px_metrics_global_t *g)
{
    const uint16_t *ids;
    int ngroups = px_group_all(&ids);

    help(o, "pqproxy_build_info", "gauge", "Version of pqproxy and of the wolfSSL it is linked with.");
    px_buf_printf(o, "pqproxy_build_info{version=\"%s\",wolfssl=\"%s\"} 1\n", g->version,
                  g->wolfssl_version);
    help(o, "pqproxy_workers", "gauge", "Worker threads (one event loop each).");
    px_buf_printf(o, "pqproxy_workers %llu\n", (unsigned long long)g->workers);
    help(o, "pqproxy_ready", "gauge", "1 when /readyz would answer 200 (the model server is probed every 2 s).");
    px_buf_printf(o, "pqproxy_ready %d\n", g->ready);
    help(o, "pqproxy_draining", "gauge", "1 after SIGTERM/SIGINT, while in-flight requests finish.");
    px_buf_printf(o, "pqproxy_draining %d\n", g->draining);
    help(o, "pqproxy_config_reloads_total", "counter", "Configuration reloads (SIGHUP) by result.");
    px_buf_printf(o, "pqproxy_config_reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)g->reloads_ok);
    px_buf_printf(o, "pqproxy_config_reloads_total{result=\"failed\"} %llu\n",
                  (unsigned long long)g->reloads_failed);
    help(o, "pqproxy_config_last_reload_timestamp_seconds", "gauge",
         "Unix time the running configuration was loaded.");
    px_buf_printf(o, "pqproxy_config_last_reload_timestamp_seconds %llu\n",
                  (unsigned long long)g->config_timestamp);

    help(o, "pqproxy_memory_allocated_bytes", "gauge", "Heap bytes in use (malloc), all threads.");
    px_buf_printf(o, "pqproxy_memory_allocated_bytes %llu\n", (unsigned long long)g->mem_allocated);
    help(o, "pqproxy_memory_heap_bytes", "gauge", "Heap bytes malloc holds from the system, in use or free.");
    px_buf_printf(o, "pqproxy_memory_heap_bytes %llu\n", (unsigned long long)g->mem_heap);

    help(o, "pqproxy_connections_open", "gauge", "Client connections open now.");
    px_buf_printf(o, "pqproxy_connections_open %llu\n", (unsigned long long)SUM(conns_open));
    help(o, "pqproxy_connections_total", "counter", "Client connections accepted.");
    px_buf_printf(o, "pqproxy_connections_total %llu\n", (unsigned long long)SUM(conns_total));
    help(o, "pqproxy_connections_rejected_total", "counter",
         "Client connections closed at once because max_connections was reached or draining.");
    px_buf_printf(o, "pqproxy_connections_rejected_total %llu\n", (unsigned long long)SUM(conns_rejected));
    help(o, "pqproxy_accept_fd_exhausted_total", "counter",
         "Client connections closed at accept because the process had no file descriptor left.");
    px_buf_printf(o, "pqproxy_accept_fd_exhausted_total %llu\n",
                  (unsigned long long)SUM(accept_fd_exhausted));

    help(o, "pqproxy_tls_handshakes_total", "counter",
         "TLS handshakes by negotiated group, cipher and result; group is \"none\" when none was negotiated.");
    for (int gi = 0; gi < PX_M_GROUPS; gi++) {
        const char *gname = gi < ngroups && gi < PX_M_GROUP_OTHER ? px_group_name(ids[gi]) : "other";
        for (int c = 0; c < PX_M_CIPHERS; c++) {
            uint64_t v = SUM(hs_ok[gi][c]);
            /* zero series only for hybrid groups and one cipher, so dashboards have them */
            if (v || (gi < ngroups && gi < PX_M_GROUP_OTHER && px_group_is_hybrid(ids[gi]) && c == 0))
                px_buf_printf(o,
                              "pqproxy_tls_handshakes_total{group=\"%s\",hybrid=\"%s\",cipher=\"%s\",result=\"ok\"} %llu\n",
                              gname, gi < ngroups && px_group_is_hybrid(ids[gi]) ? "true" : "false",
                              cipher_names[c], (unsigned long long)v);
        }
    }
    for (int f = 0; f < PX_M_HS_FAIL; f++)
        px_buf_printf(o,
                      "pqproxy_tls_handshakes_total{group=\"none\",hybrid=\"false\",cipher=\"none\",result=\"%s\"} %llu\n",
                      hs_fail_names[f], (unsigned long long)SUM(hs_fail[f]));
    help(o, "pqproxy_tls_hello_retry_requests_total", "counter",
         "HelloRetryRequests by reason: to_hybrid (the client's key share was for a classical "
         "group), no_usable_share (none for a group the proxy knows).");
    px_buf_printf(o, "pqproxy_tls_hello_retry_requests_total{reason=\"to_hybrid\"} %llu\n",
                  (unsigned long long)SUM(hs_hrr[0]));
    px_buf_printf(o, "pqproxy_tls_hello_retry_requests_total{reason=\"no_usable_share\"} %llu\n",
                  (unsigned long long)SUM(hs_hrr[1]));
    help(o, "pqproxy_tls_resumptions_total", "counter", "Handshakes resumed from a session ticket.");
    px_buf_printf(o, "pqproxy_tls_resumptions_total %llu\n", (unsigned long long)SUM(hs_resumed));
    cert_metrics(o, w, n, g);

    help(o, "pqproxy_http_requests_total", "counter",
         "Requests by route (the matching routes[].prefix, \"grpc:\" before it for a gRPC route, "
         "\"none\" when no route matched), method and response status class (\"none\": no response "
         "was sent).");
    for (int r = 0; r < PX_M_ROUTES; r++) {
        const px_route_t *rt = NULL;
        for (int i = 0; r && i < g->route_count && !rt; i++)
            if (g->routes[i].metrics_row == r)
                rt = &g->routes[i];
        if (r && !rt)
            continue;   /* a route a reload removed: its series ends */
        for (int m = 0; m < PX_M_METHODS; m++)
            for (int c = 0; c < PX_M_CLASSES; c++) {
                uint64_t v = SUM(requests[r][m][c]);
                if (!v)
                    continue;
                /* prefixes hold no '"', '\\' or control characters (config_sig.c) */
                px_buf_printf(o,
                              "pqproxy_http_requests_total{route=\"%s%s\",method=\"%s\",code=\"%s\"} %llu\n",
                              rt && rt->grpc ? "grpc:" : "", rt ? rt->prefix : "none", method_names[m],
                              class_names[c], (unsigned long long)v);
            }
    }
    hist(o, w, n, offsetof(px_metrics_t, request_seconds), "pqproxy_http_request_duration_seconds",
         "From the complete request head to the complete response.");
    hist(o, w, n, offsetof(px_metrics_t, upstream_seconds), "pqproxy_upstream_response_seconds",
         "From the request sent upstream to the first response byte.");
    help(o, "pqproxy_http_request_body_bytes_total", "counter", "Request body bytes received from clients.");
    px_buf_printf(o, "pqproxy_http_request_body_bytes_total %llu\n", (unsigned long long)SUM(bytes_in));
    help(o, "pqproxy_http_response_body_bytes_total", "counter", "Response body bytes sent to clients.");
    px_buf_printf(o, "pqproxy_http_response_body_bytes_total %llu\n", (unsigned long long)SUM(bytes_out));

    help(o, "pqproxy_upstream_connections", "gauge", "Upstream connections by state.");
    px_buf_printf(o, "pqproxy_upstream_connections{state=\"idle\"} %llu\n",
                  (unsigned long long)SUM(upstream_idle));
    px_buf_printf(o, "pqproxy_upstream_connections{state=\"busy\"} %llu\n",
                  (unsigned long long)SUM(upstream_busy));
    help(o, "pqproxy_upstream_queued_requests", "gauge",
         "Requests waiting for an upstream connection (upstream.max_connections reached).");
    px_buf_printf(o, "pqproxy_upstream_queued_requests %llu\n", (unsigned long long)SUM(upstream_queued));
    help(o, "pqproxy_upstream_queued_total", "counter",
         "Requests that waited for an upstream connection (upstream.max_connections reached).");
    px_buf_printf(o, "pqproxy_upstream_queued_total %llu\n", (unsigned long long)SUM(upstream_queued_total));
    help(o, "pqproxy_upstream_connects_total", "counter", "New upstream connections opened.");
    px_buf_printf(o, "pqproxy_upstream_connects_total %llu\n", (unsigned long long)SUM(upstream_connects));
    help(o, "pqproxy_upstream_reuses_total", "counter", "Requests sent on a pooled keep-alive connection.");
    px_buf_printf(o, "pqproxy_upstream_reuses_total %llu\n", (unsigned long long)SUM(upstream_reuses));
    help(o, "pqproxy_upstream_errors_total", "counter", "Upstream failures by kind.");
    for (int e = 0; e < PX_M_UP_ERR; e++)
        px_buf_printf(o, "pqproxy_upstream_errors_total{kind=\"%s\"} %llu\n", up_err_names[e],
                      (unsigned long long)SUM(upstream_errors[e]));
    help(o, "pqproxy_signature_verifications_total", "counter",
         "Request signature checks by result (digest_mismatch: the signature passed, the body did not).");
    for (int r = 0; r < g->sig_result_count; r++)
        px_buf_printf(o, "pqproxy_signature_verifications_total{result=\"%s\"} %llu\n",
                      g->sig_result_names[r], (unsigned long long)g->sig_results[r]);
    help(o, "pqproxy_signature_classical_accepted_total", "counter",
         "Requests accepted with an ECDSA-only signature (signatures.allow_classical).");
    px_buf_printf(o, "pqproxy_signature_classical_accepted_total %llu\n",
                  (unsigned long long)g->sig_classical);
    help(o, "pqproxy_response_signatures_total", "counter",
         "Responses on signing routes: signed, or streamed unsigned to HTTP/1.0 clients (no trailers).");
    px_buf_printf(o, "pqproxy_response_signatures_total{result=\"signed\"} %llu\n",
                  (unsigned long long)g->responses_signed);
    px_buf_printf(o, "pqproxy_response_signatures_total{result=\"unsigned_http10\"} %llu\n",
                  (unsigned long long)SUM(responses_unsigned));
    help(o, "pqproxy_signature_queue_depth", "gauge",
         "Signature jobs queued or running on the thread pool.");
    px_buf_printf(o, "pqproxy_signature_queue_depth %llu\n", (unsigned long long)g->sig_queue_depth);
    help(o, "pqproxy_replay_cache_entries", "gauge", "Nonces remembered by the replay cache.");
    px_buf_printf(o, "pqproxy_replay_cache_entries %llu\n", (unsigned long long)g->replay_entries);
    help(o, "pqproxy_replay_cache_capacity", "gauge", "Nonces the replay cache can hold.");
    px_buf_printf(o, "pqproxy_replay_cache_capacity %llu\n", (unsigned long long)g->replay_capacity);
    help(o, "pqproxy_replay_store_checks_total", "counter",
         "Nonce checks in the shared replay store (Redis) by result.");
    for (int r = 0; r < PX_RSTORE__COUNT; r++)
        px_buf_printf(o, "pqproxy_replay_store_checks_total{result=\"%s\"} %llu\n",
                      px_rstore_result_name((px_rstore_result_t)r),
                      (unsigned long long)g->store_checks[r]);
    help(o, "pqproxy_replay_store_fail_open_total", "counter",
         "Signed requests accepted without the shared replay check (on_unavailable: fail_open).");
    px_buf_printf(o, "pqproxy_replay_store_fail_open_total %llu\n",
                  (unsigned long long)g->store_fail_open);

    help(o, "pqproxy_tls_ticket_keys", "gauge",
         "Session-ticket keys in use (the first seals, all open).");
    px_buf_printf(o, "pqproxy_tls_ticket_keys %llu\n", (unsigned long long)g->ticket_keys);
    help(o, "pqproxy_tls_ticket_key_updates_total", "counter",
         "Shared ticket key checks (tls.ticket_keys file or redis): new keys taken, or failed "
         "(bad file, Redis unavailable or a bad reply) and the keys in use kept.");
    px_buf_printf(o, "pqproxy_tls_ticket_key_updates_total{result=\"ok\"} %llu\n",
                  (unsigned long long)g->ticket_key_updates);
    px_buf_printf(o, "pqproxy_tls_ticket_key_updates_total{result=\"failed\"} %llu\n",
                  (unsigned long long)g->ticket_key_failures);

    help(o, "pqproxy_upstream_h2c_unresponsive_total", "counter",
         "h2c connections to the model server closed because a PING went unanswered.");
    px_buf_printf(o, "pqproxy_upstream_h2c_unresponsive_total %llu\n",
                  (unsigned long long)SUM(upstream_h2c_unresponsive));
    help(o, "pqproxy_upstream_retries_total", "counter",
         "Idempotent requests retried on a fresh connection after a stale pooled one failed.");
    px_buf_printf(o, "pqproxy_upstream_retries_total %llu\n", (unsigned long long)SUM(upstream_retries));
    help(o, "pqproxy_h2_connections_total", "counter", "Client connections that chose HTTP/2 by ALPN.");
    px_buf_printf(o, "pqproxy_h2_connections_total %llu\n", (unsigned long long)SUM(h2_conns));
    help(o, "pqproxy_h2_streams_total", "counter", "HTTP/2 request streams handed to an exchange.");
    px_buf_printf(o, "pqproxy_h2_streams_total %llu\n", (unsigned long long)SUM(h2_streams));
    help(o, "pqproxy_h2_events_total", "counter",
         "HTTP/2 refusals and abuse limits by event (counted as the connection's session reports them).");
    for (int e = 0; e < PX_M_H2_EVENTS; e++)
        px_buf_printf(o, "pqproxy_h2_events_total{event=\"%s\"} %llu\n", h2_event_names[e],
                      (unsigned long long)SUM(h2_events[e]));
    help(o, "pqproxy_h2_stream_timeouts_total", "counter",
         "HTTP/2 streams ended by a deadline: timeouts.request_ms, timeouts.body_idle_ms, grpc-timeout.");
    for (int t = 0; t < 3; t++)
        px_buf_printf(o, "pqproxy_h2_stream_timeouts_total{timeout=\"%s\"} %llu\n",
                      (const char *const[]){ "request", "body_idle", "grpc_deadline" }[t],
                      (unsigned long long)SUM(h2_stream_timeouts[t]));
    help(o, "pqproxy_requests_by_protocol_total", "counter",
         "Requests by the client's protocol (HTTP/1.1 or HTTP/2), whatever their answer.");
    px_buf_printf(o, "pqproxy_requests_by_protocol_total{protocol=\"http/1.1\"} %llu\n",
                  (unsigned long long)SUM(requests_proto[0]));
    px_buf_printf(o, "pqproxy_requests_by_protocol_total{protocol=\"h2\"} %llu\n",
                  (unsigned long long)SUM(requests_proto[1]));
    help(o, "pqproxy_request_deadline_exceeded_total", "counter",
         "Requests answered 408 because head and body were not complete within timeouts.request_ms.");
    px_buf_printf(o, "pqproxy_request_deadline_exceeded_total %llu\n",
                  (unsigned long long)SUM(request_deadline));
    help(o, "pqproxy_send_timeouts_total", "counter",
         "Client connections closed because the client took no response bytes for timeouts.send_idle_ms.");
    px_buf_printf(o, "pqproxy_send_timeouts_total %llu\n", (unsigned long long)SUM(send_timeouts));
    return px_buf_size(o) ? 0 : PX_ENOMEM;
}
