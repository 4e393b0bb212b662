/* pqproxy command line: dispatch only. */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: pqproxy <command> [options]\n"
            "\n"
            "commands:\n"
            "  run --config FILE          start the proxy\n"
            "  check-config FILE          validate a configuration file and exit\n"
            "  certgen --out DIR          make a development CA and server certificates\n"
            "  request URL [options]      send one HTTPS request (hybrid post-quantum TLS)\n"
            "  healthcheck [--url URL]    GET the admin /healthz over plain HTTP; exit 0 on 2xx\n"
            "  inject-webhook [options]   Kubernetes admission webhook that injects the sidecar\n"
            "  keygen --out PREFIX        ECDSA P-384 + ML-DSA-87 request-signing key pair\n"
            "                             (--alg age-pq or age-x25519: an age identity)\n"
            "  sign [options]             sign a request or response (docs/signatures.md)\n"
            "  verify [options]           verify a signed request or response\n"
            "  seal -r RECIPIENT -o OUT   encrypt a file in the age format (docs/sealing.md)\n"
            "  open -i IDENTITY -o OUT    decrypt an age file, every chunk authenticated\n"
            "  sign-model DIR [options]   dual-signed manifest of a model directory (docs/model-signing.md)\n"
            "  verify-model DIR [options] check a model directory against its signed manifest\n"
            "  open-model [options]       open a sealed, signed model into a directory, all or nothing\n"
            "  bench crypto [options]     what each primitive and handshake costs here\n"
            "  version                    version, wolfSSL version and post-quantum support\n"
            "                             (also --version)\n"
            "\n"
            "pqproxy <command> --help describes a command's options.\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (!cmd)
        return usage(stderr);
    if (px_cli_is_help(cmd) || !strcmp(cmd, "help"))
        return usage(stdout);
    for (const px_command_t *c = px_commands; c->name; c++)
        if (!strcmp(cmd, c->name))
            return c->main(argc - 1, argv + 1);
    fprintf(stderr, "pqproxy: unknown command '%s'\n(usage: pqproxy --help)\n", cmd);
    return 2;
}
