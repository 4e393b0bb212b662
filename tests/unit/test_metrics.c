/* Route rows of the request counters across reloads (px_m_route_rows): a
 * route the previous configuration had keeps its row whatever its position,
 * a new one gets a row the previous configuration did not use, cleared in
 * every worker; and the exposition labels each row with its route. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"

static px_config_t *config(const char *const *prefixes, const int *grpc, int n)
{
    px_config_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    for (int i = 0; i < n; i++) {
        c->routes[i].prefix = (char *)prefixes[i];
        c->routes[i].grpc = grpc[i];
        c->routes[i].metrics_row = i + 1;    /* as config_sig.c numbers them at load */
    }
    c->route_count = n;
    return c;
}

static int row_of(const px_config_t *c, const char *prefix, int grpc)
{
    for (int i = 0; i < c->route_count; i++)
        if (!strcmp(c->routes[i].prefix, prefix) && c->routes[i].grpc == grpc)
            return c->routes[i].metrics_row;
    return -1;
}

static void test_rows_follow_routes(void **state)
{
    static const char *const p1[] = { "/", "/v1/batch/", "/v1/", "/" };
    static const int g1[] = { 1, 0, 0, 0 };
    static const char *const p2[] = { "/v2/", "/", "/v1/", "/", "/x/" };
    static const int g2[] = { 0, 0, 0, 1, 0 };
    px_metrics_t *w[2];
    px_config_t *prev = config(p1, g1, 4), *next = config(p2, g2, 5);
    int seen[PX_M_ROUTES] = { 0 };

    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_non_null(w[i] = calloc(1, sizeof *w[i]));
        for (int r = 0; r < PX_M_ROUTES; r++)
            w[i]->requests[r][0][2] = 100 + (uint64_t)r;   /* counts in every row */
    }
    px_m_route_rows(next, prev, w, 2);
    /* kept: "/" (row 4), "/v1/" (3), gRPC "/" (1), whatever their positions now */
    assert_int_equal(row_of(next, "/", 0), 4);
    assert_int_equal(row_of(next, "/v1/", 0), 3);
    assert_int_equal(row_of(next, "/", 1), 1);
    /* new: rows prev did not use (1..4 were its), distinct, cleared in both workers */
    for (int i = 0; i < next->route_count; i++) {
        int r = next->routes[i].metrics_row;
        assert_true(r >= 1 && r < PX_M_ROUTES);
        assert_int_equal(seen[r]++, 0);
    }
    for (int k = 0; k < 2; k++) {
        int r = row_of(next, k ? "/x/" : "/v2/", 0);
        assert_true(r > 4);
        for (int i = 0; i < 2; i++)
            assert_int_equal(w[i]->requests[r][0][2], 0);
    }
    /* kept rows keep their counts; rows no route took are untouched */
    assert_int_equal(w[1]->requests[3][0][2], 103);
    assert_int_equal(w[0]->requests[2][0][2], 102);     /* "/v1/batch/", removed: not rendered */
    free(prev);
    free(next);
    free(w[0]);
    free(w[1]);
}

/* Reload after reload with every route new each time: rows stay distinct
 * from the previous configuration's, and within the table. */
static void test_all_new_routes_each_time(void **state)
{
    static const char *const a[32] = { "/a0", "/a1", "/a2", "/a3", "/a4", "/a5", "/a6", "/a7", "/a8", "/a9",
                                       "/aa", "/ab", "/ac", "/ad", "/ae", "/af", "/ag", "/ah", "/ai", "/aj",
                                       "/ak", "/al", "/am", "/an", "/ao", "/ap", "/aq", "/ar", "/as", "/at",
                                       "/au", "/av" };
    static const char *const b[32] = { "/b0", "/b1", "/b2", "/b3", "/b4", "/b5", "/b6", "/b7", "/b8", "/b9",
                                       "/ba", "/bb", "/bc", "/bd", "/be", "/bf", "/bg", "/bh", "/bi", "/bj",
                                       "/bk", "/bl", "/bm", "/bn", "/bo", "/bp", "/bq", "/br", "/bs", "/bt",
                                       "/bu", "/bv" };
    static const int g[32] = { 0 };
    px_metrics_t *w[1];
    px_config_t *c[3] = { config(a, g, 32), config(b, g, 32), config(a, g, 32) };

    (void)state;
    assert_non_null(w[0] = calloc(1, sizeof *w[0]));
    px_m_route_rows(c[1], c[0], w, 1);
    px_m_route_rows(c[2], c[1], w, 1);
    for (int k = 1; k < 3; k++) {
        int prev_rows[PX_M_ROUTES] = { 0 };
        for (int i = 0; i < 32; i++)
            prev_rows[c[k - 1]->routes[i].metrics_row] = 1;
        for (int i = 0; i < 32; i++) {
            int r = c[k]->routes[i].metrics_row;
            assert_true(r >= 1 && r < PX_M_ROUTES);
            assert_false(prev_rows[r]);
        }
    }
    for (int k = 0; k < 3; k++)
        free(c[k]);
    free(w[0]);
}

static void test_exposition_labels(void **state)
{
    static const char *const p[] = { "/v1/", "/", "/" };
    static const int g[] = { 0, 1, 0 };
    px_config_t *c = config(p, g, 3);
    px_metrics_t *w[1];
    px_metrics_global_t glob;
    px_buf_t out;

    (void)state;
    assert_non_null(w[0] = calloc(1, sizeof *w[0]));
    c->routes[0].metrics_row = 7;                    /* rows as a reload left them */
    c->routes[1].metrics_row = 2;
    c->routes[2].metrics_row = 40;
    w[0]->requests[7][0][2] = 3;                     /* GET 2xx */
    w[0]->requests[2][1][2] = 4;                     /* POST 2xx */
    w[0]->requests[40][0][4] = 5;                    /* GET 4xx */
    w[0]->requests[0][0][2] = 6;
    w[0]->requests[9][0][2] = 8;                     /* a removed route's row */
    memset(&glob, 0, sizeof glob);
    glob.version = glob.wolfssl_version = "test";
    glob.routes = c->routes;
    glob.route_count = c->route_count;
    px_buf_init(&out, 0);
    assert_int_equal(px_metrics_render(&out, w, 1, &glob), 0);
    px_buf_append(&out, "", 1);
    const char *text = (const char *)px_buf_ptr(&out);
    assert_non_null(strstr(text, "pqproxy_http_requests_total{route=\"/v1/\",method=\"GET\",code=\"2xx\"} 3\n"));
    assert_non_null(strstr(text, "pqproxy_http_requests_total{route=\"grpc:/\",method=\"POST\",code=\"2xx\"} 4\n"));
    assert_non_null(strstr(text, "pqproxy_http_requests_total{route=\"/\",method=\"GET\",code=\"4xx\"} 5\n"));
    assert_non_null(strstr(text, "pqproxy_http_requests_total{route=\"none\",method=\"GET\",code=\"2xx\"} 6\n"));
    assert_null(strstr(text, "} 8\n"));
    px_buf_free(&out);
    free(c);
    free(w[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_follow_routes),
        cmocka_unit_test(test_all_new_routes_each_time),
        cmocka_unit_test(test_exposition_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
