#include "cli.h"
#include "client.h"
#include "server.h"

const px_command_t px_commands[] = {
    { "run", px_cmd_run },
    { "request", px_cmd_request },
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { "check-config", px_cmd_check_config },
    { 0, 0 },
};
