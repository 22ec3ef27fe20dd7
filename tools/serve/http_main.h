/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - --listen: serve over HTTP until SIGINT/SIGTERM. */
#ifndef SERVE_HTTP_MAIN_H
#define SERVE_HTTP_MAIN_H

#include "cli.h"

/** The process's exit status. */
int serve_http_main(const struct serve_cli *c, const struct serve_model *m);

#endif /* SERVE_HTTP_MAIN_H */
