/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the engine's registration with kvacceld (--kvacceld):
 * the daemon's release requests (pressure rounds) are answered through
 * the scheduler (serve_driver_pressure(): cached prefixes, then swap-outs
 * or drops, lowest priority first). Driven from the engine thread.
 */
#ifndef SERVE_PRESSURE_H
#define SERVE_PRESSURE_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"

struct serve_kvd;

/** NULL with a message in @err (no daemon, the name taken, ...). */
struct serve_kvd *serve_kvd_connect(const char *name, uint32_t prio, struct serve_driver *d,
				    char *err, size_t errlen);
void serve_kvd_close(struct serve_kvd *k);
/** The socket to poll (-1: none). */
int serve_kvd_fd(const struct serve_kvd *k);
/** Answer what the daemon sent; reconnects once when it went away. */
void serve_kvd_dispatch(struct serve_kvd *k);
/** Release requests answered so far. */
uint64_t serve_kvd_rounds(const struct serve_kvd *k);

#endif /* SERVE_PRESSURE_H */
