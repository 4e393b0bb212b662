#include "cli.h"

const px_command_t px_commands[] = {
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { "check-config", px_cmd_check_config },
    { 0, 0 },
};
