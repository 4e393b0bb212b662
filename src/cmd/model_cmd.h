/* `pqproxy sign-model | verify-model | open-model` (docs/model-signing.md). */
#ifndef PX_MODEL_CMD_H
#define PX_MODEL_CMD_H

int px_cmd_sign_model(int argc, char **argv);
int px_cmd_verify_model(int argc, char **argv);
int px_cmd_open_model(int argc, char **argv);

#endif
