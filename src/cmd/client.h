#ifndef PX_CLIENT_H
#define PX_CLIENT_H

/* `pqproxy request URL [options]`; argv[0] == "request". */
int px_cmd_request(int argc, char **argv);

#endif
