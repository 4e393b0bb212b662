#include "certgen.h"
#include "cli.h"

const px_command_t px_commands[] = {
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { "certgen", px_cmd_certgen },
    { 0, 0 },
};
