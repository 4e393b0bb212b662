#include "cmd/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/age_cmd.h"
#include "cmd/bench.h"
#include "cmd/certgen.h"
#include "cmd/client.h"
#include "cmd/healthcheck.h"
#include "cmd/inject.h"
#include "cmd/model_cmd.h"
#include "proxy/server.h"
#include "sig/sig.h"

int px_cli_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int px_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pqproxy %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(usage: pqproxy %s --help)\n", cmd);
    return 2;
}

int px_cli_unknown(const char *cmd, const char *arg)
{
    return px_cli_usage_error(cmd, "unknown %s '%s'", arg[0] == '-' ? "option" : "argument", arg);
}

int px_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
               const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (a[n] == '=')
        *val = a + n + 1;
    else if (*i + 1 < argc)
        *val = argv[++*i];
    else
        *val = NULL;
    if (!*val) {
        px_cli_usage_error(cmd, "option '%s' needs a value", name);
        return -1;
    }
    return 1;
}

int px_cli_config_file(const char *cmd, const char *help, int argc, char **argv,
                       const char **file)
{
    const char *v;

    *file = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (px_cli_is_help(argv[i])) {
            printf("usage: pqproxy %s FILE    (also --config FILE, --config=FILE, -c FILE)\n%s",
                   cmd, help);
            return 0;
        }
        if ((r = px_cli_opt(cmd, argc, argv, &i, "--config", &v)) == 0)
            r = px_cli_opt(cmd, argc, argv, &i, "-c", &v);
        if (r < 0)
            return 2;
        if (r == 0 && argv[i][0] == '-')
            return px_cli_unknown(cmd, argv[i]);
        if (r == 0)
            v = argv[i];
        if (!*v)
            return px_cli_usage_error(cmd, "the configuration file name is empty");
        if (*file)
            return px_cli_usage_error(cmd, "one configuration file only ('%s' and '%s')", *file, v);
        *file = v;
    }
    if (!*file)
        return px_cli_usage_error(cmd, "no configuration file given");
    return 1;
}

/* `run` and `check-config` live in server.c; their arguments are read here. */
static int cmd_run(int argc, char **argv)
{
    const char *file;
    int r = px_cli_config_file("run",
                               "Starts the proxy with the configuration in FILE (docs/config.md);\n"
                               "SIGTERM drains and exits, SIGHUP reloads FILE.\n",
                               argc, argv, &file);
    return r == 1 ? px_server_run_file(file) : r;
}

static int cmd_check_config(int argc, char **argv)
{
    const char *file;
    int r = px_cli_config_file("check-config",
                               "Validates FILE (with PQPROXY_* environment overrides applied) and loads what\n"
                               "`run` loads from it (certificates and keys, CA files, signature keys) and exits:\n"
                               "0 when valid, 1 when not (the reason goes to stderr), 2 on usage errors.\n",
                               argc, argv, &file);
    return r == 1 ? px_server_check_file(file) : r;
}

const px_command_t px_commands[] = {
    { "run", cmd_run },
    { "check-config", cmd_check_config },
    { "certgen", px_cmd_certgen },
    { "request", px_cmd_request },
    { "healthcheck", px_cmd_healthcheck },
    { "inject-webhook", px_cmd_inject_webhook },
    { "keygen", px_cmd_keygen },
    { "sign", px_cmd_sign },
    { "verify", px_cmd_verify },
    { "seal", px_cmd_seal },
    { "open", px_cmd_open },
    { "bench", px_cmd_bench },
    { "sign-model", px_cmd_sign_model },
    { "verify-model", px_cmd_verify_model },
    { "open-model", px_cmd_open_model },
    { "--version", px_cmd_version },
    { "version", px_cmd_version },
    { 0, 0 },
};
