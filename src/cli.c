#include "cli.h"
#include "bench.h"
#include "certgen.h"
#include "client.h"
#include "healthcheck.h"
#include "inject.h"
#include "server.h"
#include "sig.h"

const px_command_t px_commands[] = {
    { "run", px_cmd_run },
    { "check-config", px_cmd_check_config },
    { "certgen", px_cmd_certgen },
    { "request", px_cmd_request },
    { "healthcheck", px_cmd_healthcheck },
    { "inject-webhook", px_cmd_inject_webhook },
    { "keygen", px_cmd_keygen },
    { "sign", px_cmd_sign },
    { "verify", px_cmd_verify },
    { "bench", px_cmd_bench },
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { 0, 0 },
};
