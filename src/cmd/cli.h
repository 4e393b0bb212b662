/* The command table, and what every command's argument parsing shares so
 * the whole CLI behaves alike: `--help`/`-h` prints the command's usage to
 * stdout and exits 0; a usage error names the bad option or argument on
 * stderr and exits 2. */
#ifndef PX_CLI_H
#define PX_CLI_H

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);   /* argv[0] is the command name */
} px_command_t;

extern const px_command_t px_commands[];

int px_cmd_version(int argc, char **argv);
int px_cmd_certgen(int argc, char **argv);   /* certgen.h */

/* 1 for "-h" and "--help". */
int px_cli_is_help(const char *arg);

/* Prints "pqproxy CMD: REASON" and a pointer to `pqproxy CMD --help` to
 * stderr; returns 2, the exit status of a usage error. */
int px_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The usage error for an option or argument the command does not know. */
int px_cli_unknown(const char *cmd, const char *arg);

/* Reads option `name` at argv[*i] as "NAME VALUE" or "NAME=VALUE": 1 and
 * *val set (and *i moved past a separate value), 0 when argv[*i] is another
 * option, -1 (after px_cli_usage_error) when the value is missing. */
int px_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
               const char **val);

/* `run` and `check-config`: FILE, --config FILE, --config=FILE or -c FILE.
 * 1 with *file set; otherwise the exit status: 0 after printing `help` for
 * --help, 2 after a usage error. */
int px_cli_config_file(const char *cmd, const char *help, int argc, char **argv,
                       const char **file);

#endif
