/* The command table: each command lives in the module it belongs to. */
#ifndef PX_CLI_H
#define PX_CLI_H

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);   /* argv[0] is the command name */
} px_command_t;

extern const px_command_t px_commands[];

int px_cmd_version(int argc, char **argv);
int px_cmd_check_config(int argc, char **argv);   /* server.c */
int px_cmd_certgen(int argc, char **argv);   /* certgen.h */

#endif
