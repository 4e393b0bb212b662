/* `pqproxy healthcheck`: a plain HTTP GET for container health checks. */
#ifndef PX_HEALTHCHECK_H
#define PX_HEALTHCHECK_H

#include <stddef.h>

/* http://HOST[:PORT][/PATH] -> host (without brackets), port ("80" when
 * absent), path ("/" when absent, pointing into url). 0 or -1. */
int px_healthcheck_parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                             const char **path);

/* GETs url with a whole-exchange deadline; returns the final status code,
 * or -1 with the reason in err. */
int px_healthcheck_get(const char *url, int timeout_ms, char *err, size_t errlen);

/* argv[0] == "healthcheck"; exit 0 on 2xx, 1 otherwise, 2 on usage errors. */
int px_cmd_healthcheck(int argc, char **argv);

#endif
