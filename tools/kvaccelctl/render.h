/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccelctl - turning messages of the kvaccel family into JSON objects,
 * tables and event lines.
 */
#ifndef KVACCELCTL_RENDER_H
#define KVACCELCTL_RENDER_H

#include <stdint.h>
#include <stdio.h>
#include <json-c/json.h>

#include "kvnl.h"

/* Every known attribute of @msg as a member of a new object. */
json_object *render_json(const struct kvnl_msg *msg);

/* Human-readable bytes: "512 B", "1.5 GiB". */
const char *render_bytes(uint64_t bytes, char *buf, size_t len);

void render_status(FILE *f, json_object *dev);
void render_clients(FILE *f, json_object *array);
void render_regions(FILE *f, json_object *array);
/* kvacceld's lists (daemon.h): engines registered, hand-offs in flight. */
void render_engines(FILE *f, json_object *array);
void render_handoffs(FILE *f, json_object *array);
/* kvacceld's live migrations (in flight, recent, engines draining). */
void render_migrations(FILE *f, json_object *array);
/* kvacceld's cluster view (daemon_cluster()): its status, nodes and engines. */
void render_cluster(FILE *f, json_object *view);
/* One line: the event's name, then key=value for each member. */
void render_event(FILE *f, json_object *event);

#endif
