// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's HTTP server against the module: the server in this
 * process on host tiers in kvaccel regions (swaps on the copy engine), a
 * tiny HTTP client over sockets: bad inputs get their status and JSON
 * error; completions on a compute tier too small for all of them at once
 * give the digests of the same prompts alone on memfd tiers; a stream's
 * digests equal them; /metrics counts them; the device's usage is back
 * where it was after the stop.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accel.h"
#include "../libaccel/accel_test.h"
#include "http.h"
#include "stack.h"
#include "kselftest_harness.h"

#define NREQ	4
#define MAXTOK	12

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog.",
	"kvaccel: pinned host memory for KV caches, remapped without copying.",
	"Paged attention reads K and V through block tables.",
};

static uint16_t port;

/* The guest's loopback may be down (a bare initramfs): up, as root. */
static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret = -1;

	if (fd < 0)
		return -1;
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return ret;
}

/* One HTTP/1.0 exchange; the status, the body in @out (NUL-terminated). */
static int xfer(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char head[256], *sep;
	size_t len = 0, bl = body ? strlen(body) : 0;
	ssize_t n;
	int fd, st = -1;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	n = snprintf(head, sizeof(head), "%s %s HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", method,
		     path, bl);
	if (write(fd, head, (size_t)n) != n || (bl && write(fd, body, bl) != (ssize_t)bl))
		goto out;
	while (len + 1 < cap && (n = read(fd, out + len, cap - len - 1)) > 0)
		len += (size_t)n;
	out[len] = 0;
	if (sscanf(out, "HTTP/1.%*d %d", &st) != 1 || !(sep = strstr(out, "\r\n\r\n")))
		goto out;
	memmove(out, sep + 4, strlen(sep + 4) + 1);
out:
	close(fd);
	return st;
}

/* The digests in a body, in order: "digest": "x" or "digests": ["x", ...]. */
static uint32_t scan_digests(const char *s, const char *key, uint64_t *dig, uint32_t cap)
{
	uint32_t n = 0;
	const char *p;

	for (p = strstr(s, key); p && n < cap; p = strstr(p + 1, key)) {
		p += strlen(key);
		while (*p && n < cap) {
			while (*p == ' ' || *p == '[' || *p == ',')
				p++;
			if (*p != '"')
				break;
			dig[n++] = strtoull(p + 1, NULL, 16);
			p += 18;
			if (!strcmp(key, "\"digest\": "))
				break;
		}
	}
	return n;
}

static void alone(const struct serve_model *m, uint64_t (*dig)[MAXTOK])
{
	struct serve_stack_opts so = { .model = m, .memfd = true };
	struct serve_params p = { .max_tokens = MAXTOK };
	struct serve_fcfs_opts fo = { 0 };
	struct serve_req_info in;
	struct serve_stack s;
	int32_t tok[128];
	uint32_t i, j, id;
	char err[256];

	for (i = 0; i < NREQ; i++) {
		if (serve_stack_create(&s, &so, err, sizeof(err)))
			abort();
		for (j = 0; prompts[i][j]; j++)
			tok[j] = (unsigned char)prompts[i][j];
		if (serve_engine_add(s.engine, tok, j, &p, &id) ||
		    serve_run_all(s.engine, &fo, NULL) || serve_engine_info(s.engine, id, &in))
			abort();
		memcpy(dig[i], in.digests, sizeof(dig[i]));
		serve_stack_destroy(&s);
	}
}

struct client {
	pthread_t t;
	const char *prompt;
	int status;
	uint64_t dig[MAXTOK];
	uint32_t n;
	char buf[8192];
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	char body[256];

	snprintf(body, sizeof(body), "{\"prompt\": \"%s\", \"max_tokens\": %d}", c->prompt,
		 MAXTOK);
	c->status = xfer("POST", "/v1/completions", body, c->buf, sizeof(c->buf));
	c->n = scan_digests(c->buf, "\"digests\": ", c->dig, MAXTOK);
	return NULL;
}

TEST(http_on_region_tiers)
{
	static const char *const bad[] = {
		"{", "{\"prompt\": \"\"}", "{\"prompt\": [1, 300]}",
		"{\"prompt\": \"a\", \"max_tokens\": 0}", "{\"prompt\": \"a\", \"stream\": 1}",
	};
	ACCEL_OPTS(accel_device_info, info);
	uint64_t ref[NREQ][MAXTOK], dig[2 * MAXTOK];
	struct serve_config cfg;
	struct serve_model *m;
	struct serve_stack s;
	struct serve_driver_opts sched = { .max_tokens = 64, .chunk_tokens = 8,
					   .preempt = ACCEL_SCHED_PREEMPT_SWAP, .yields = true };
	struct serve_stack_opts so = { .blocks = 8, .swap_blocks = 64, .threads = 2,
				       .sched = &sched };
	struct serve_http_opts ho = { .addr = "127.0.0.1" };
	struct serve_http *h;
	struct accel_device *dev;
	struct client c[NREQ];
	static char buf[65536];
	const char *p;
	uint64_t usage0;
	char err[256];
	int i, st, ret;

	i = socket(AF_INET, SOCK_STREAM, 0);
	if (i < 0 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT))
		SKIP(return, "no IPv4 in this kernel (the minimal debug kernel has no CONFIG_INET)");
	if (i >= 0)
		close(i);
	ASSERT_EQ(0, lo_up());
	dev = accel_device_open(NULL);
	ASSERT_NE(NULL, dev);
	ASSERT_EQ(0, accel_device_info(dev, &info));
	usage0 = info.process_usage;
	serve_config_default(&cfg);
	m = serve_model_from_seed(&cfg, 1);
	ASSERT_NE(NULL, m);
	alone(m, ref);
	so.model = m;
	ASSERT_EQ(0, serve_stack_create(&s, &so, err, sizeof(err))) TH_LOG("%s", err);
	ho.driver = s.driver;
	h = serve_http_start(&ho, &ret, err, sizeof(err));
	ASSERT_NE(NULL, h) TH_LOG("%s", err);
	port = serve_http_port(h);

	for (i = 0; i < (int)(sizeof(bad) / sizeof(*bad)); i++) {
		st = xfer("POST", "/v1/completions", bad[i], buf, sizeof(buf));
		EXPECT_EQ(400, st);
		EXPECT_NE(NULL, strstr(buf, "\"type\": \"invalid_request_error\", \"code\": 400"))
			TH_LOG("%s -> %s", bad[i], buf);
	}
	EXPECT_EQ(404, xfer("GET", "/nothing", NULL, buf, sizeof(buf)));
	EXPECT_EQ(405, xfer("GET", "/v1/completions", NULL, buf, sizeof(buf)));

	/* Four at once on 8 blocks (they need up to 5 each): preempted, digests as alone. */
	for (i = 0; i < NREQ; i++) {
		c[i].prompt = prompts[i];
		ASSERT_EQ(0, pthread_create(&c[i].t, NULL, client_main, &c[i]));
	}
	for (i = 0; i < NREQ; i++) {
		pthread_join(c[i].t, NULL);
		EXPECT_EQ(200, c[i].status) TH_LOG("%s", c[i].buf);
		EXPECT_EQ(MAXTOK, c[i].n);
		EXPECT_EQ(0, memcmp(c[i].dig, ref[i], sizeof(ref[i])));
	}

	st = xfer("POST", "/v1/completions",
		  "{\"prompt\": \"Hello, world\", \"max_tokens\": 12, \"stream\": true}", buf,
		  sizeof(buf));
	EXPECT_EQ(200, st);
	EXPECT_EQ(MAXTOK, scan_digests(buf, "\"digest\": ", dig, 2 * MAXTOK));
	EXPECT_EQ(0, memcmp(dig, ref[0], sizeof(ref[0])));
	EXPECT_NE(NULL, strstr(buf, "data: [DONE]\n\n"));

	EXPECT_EQ(200, xfer("GET", "/metrics", NULL, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "\nkvaccel_serve_requests_total{status=\"200\"} 5\n"));
	EXPECT_NE(NULL, strstr(buf, "\nkvaccel_serve_requests_total{status=\"400\"} 5\n"));
	EXPECT_NE(NULL, strstr(buf, "\nkvaccel_serve_generated_tokens_total 60\n"));
	EXPECT_NE(NULL, strstr(buf, "kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"} 0\n"));
	p = strstr(buf, "\nkvaccel_serve_swap_out_blocks_total ");
	TH_LOG("blocks swapped out on the copy engine: %ld", p ? strtol(p + 37, NULL, 10) : -1L);

	serve_http_stop(h);
	serve_stack_destroy(&s);
	serve_model_free(m);
	EXPECT_EQ(usage0, accel_test_usage_settled(dev, usage0));
	accel_device_close(dev);
}

TEST_HARNESS_MAIN
