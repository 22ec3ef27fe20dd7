// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve --listen: the stack, the HTTP server on it, serving until
 * SIGINT or SIGTERM; then a graceful stop (no new connections, running
 * requests aborted, everything freed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http.h"
#include "http_main.h"
#include "steplog.h"

/* The step log's close: 1 if it failed (said). */
static int close_log(const struct serve_cli *c, FILE *f)
{
	if (!f || !fclose(f))
		return 0;
	fprintf(stderr, "kvaccel-serve: --step-log %s: %s\n", c->step_log, strerror(errno));
	return 1;
}

int serve_http_main(const struct serve_cli *c, const struct serve_model *m)
{
	struct serve_driver_opts sched = c->sched;
	struct serve_stack_opts so = {
		.model = m, .block_tokens = c->block_tokens, .blocks = c->blocks,
		.swap_blocks = c->swap_blocks, .memfd = c->memfd, .device = c->device,
		.threads = c->threads, .max_ctx = c->max_ctx, .sched = &sched,
	};
	struct serve_http_opts ho = {
		.max_clients = c->sched.max_clients, .addr = c->listen_addr, .port = c->listen_port,
		.max_concurrent = c->max_concurrent, .max_body = c->max_body,
		.max_prompt = c->max_prompt, .max_tokens = c->max_tokens_limit,
	};
	struct serve_http *h;
	struct serve_stack s;
	char err[256];
	sigset_t set;
	int ret, sig = 0;

	/* Every thread started from here on leaves SIGINT/SIGTERM to sigwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (c->step_log) {
		sched.step_log = serve_steplog_open(c->step_log, m, &so, err, sizeof(err));
		if (!sched.step_log) {
			fprintf(stderr, "kvaccel-serve: %s\n", err);
			return 1;
		}
	}
	ret = serve_stack_create(&s, &so, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kvaccel-serve: %s\n", err);
		close_log(c, sched.step_log);
		return 1;
	}
	ho.driver = s.driver;
	if (c->kvacceld) {
		ho.kvd = serve_kvd_connect(c->kvacceld, c->kvacceld_prio, s.driver, err,
					   sizeof(err));
		if (!ho.kvd) {
			fprintf(stderr, "kvaccel-serve: %s\n", err);
			serve_stack_destroy(&s);
			return 1;
		}
	}
	h = serve_http_start(&ho, &ret, err, sizeof(err));
	if (!h) {
		fprintf(stderr, "kvaccel-serve: --listen: %s\n", err);
		serve_kvd_close(ho.kvd);
		serve_stack_destroy(&s);
		close_log(c, sched.step_log);
		return 1;
	}
	printf("kvaccel-serve: listening on http://%s:%u\n", c->listen_addr, serve_http_port(h));
	fflush(stdout);
	sigwait(&set, &sig);
	fprintf(stderr, "kvaccel-serve: %s, shutting down\n", strsignal(sig));
	serve_http_stop(h);
	serve_kvd_close(ho.kvd);
	serve_stack_destroy(&s);
	return close_log(c, sched.step_log);
}
