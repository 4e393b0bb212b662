/* The close rule across the exchange/session boundary is the compiler's to
 * enforce: ignoring the status of a session op or of a px_exch_* call
 * must not compile (-Werror). Built once per case by tests/CMakeLists.txt:
 * CASE=0 uses every status (must compile), CASE=n ignores the n-th (must
 * fail with "ignoring return value"). Compiled with -c, not -fsyntax-only:
 * GCC checks unused results after parsing. */
#include "proxy/exchange.h"

int px_ignored_status(const px_sess_ops_t *o, px_exch_t *x);

int px_ignored_status(const px_sess_ops_t *o, px_exch_t *x)
{
    int rc = 0;
#if CASE == 1
    o->send_head(x, NULL, NULL, 0);
#elif CASE == 2
    o->send_data(x, NULL, 0);
#elif CASE == 3
    o->send_end(x, NULL, 0);
#elif CASE == 4
    o->flush(x, 0);
#elif CASE == 5
    o->proceed(x, 0);
#elif CASE == 6
    o->resume_input(x);
#elif CASE == 7
    o->reply_error(x, PX_HERR_INTERNAL, "");
#elif CASE == 8
    o->abort(x, PX_END_INTERNAL);
#elif CASE == 9
    o->done(x);
#elif CASE == 10
    o->orphaned(x, NULL);
#elif CASE == 11
    px_exch_req_head(x);
#elif CASE == 12
    px_exch_req_data(x, NULL, 0);
#elif CASE == 13
    px_exch_req_end(x, NULL, 0);
#elif CASE == 14
    px_exch_req_room(x);
#elif CASE == 15
    px_exch_flush_upstream(x);
#else
    rc |= o->send_head(x, NULL, NULL, 0) | o->send_data(x, NULL, 0) | o->send_end(x, NULL, 0) |
          o->flush(x, 0) | o->proceed(x, 0) | o->resume_input(x) |
          o->reply_error(x, PX_HERR_INTERNAL, "") | o->abort(x, PX_END_INTERNAL) | o->done(x) |
          o->orphaned(x, NULL) | px_exch_req_head(x) | px_exch_req_data(x, NULL, 0) |
          px_exch_req_end(x, NULL, 0) | px_exch_req_room(x) | px_exch_flush_upstream(x);
#endif
    return rc;
}
