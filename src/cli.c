#include "cli.h"
#include "bench.h"
#include "certgen.h"
#include "client.h"
#include "server.h"

const px_command_t px_commands[] = {
    { "run", px_cmd_run },
    { "check-config", px_cmd_check_config },
    { "certgen", px_cmd_certgen },
    { "request", px_cmd_request },
    { "bench", px_cmd_bench },
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { 0, 0 },
};
