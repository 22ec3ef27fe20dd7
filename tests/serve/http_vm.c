// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's HTTP server against the module: the server in this
 * process on host tiers in kvaccel regions (swaps on the copy engine), a
 * tiny HTTP client over sockets: bad inputs get their status and JSON
 * error; completions on a compute tier too small for all of them at once
 * give the digests of the same prompts alone on memfd tiers; a stream's
 * digests equal them; /metrics counts them; the device's usage is back
 * where it was after the stop. Under the priority policy, with more
 * requests in flight than the compute tier holds and one running at a
 * time: an urgent request arriving while a less urgent one prefills (held
 * at a yield point of its second chunk until the urgent one is in)
 * preempts it by swap, the only swap of the run, is never preempted
 * itself, and every request ends with the digests of its prompt alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
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

static void alone_of(const struct serve_model *m, const char *const *prompt, uint32_t nr,
		     uint64_t (*dig)[MAXTOK])
{
	struct serve_stack_opts so = { .model = m, .memfd = true };
	struct serve_params p = { .max_tokens = MAXTOK };
	struct serve_fcfs_opts fo = { 0 };
	struct serve_req_info in;
	struct serve_stack s;
	int32_t tok[128];
	uint32_t i, j, id;
	char err[256];

	for (i = 0; i < nr; i++) {
		if (serve_stack_create(&s, &so, err, sizeof(err)))
			abort();
		for (j = 0; prompt[i][j]; j++)
			tok[j] = (unsigned char)prompt[i][j];
		if (serve_engine_add(s.engine, tok, j, &p, &id) ||
		    serve_run_all(s.engine, &fo, NULL) || serve_engine_info(s.engine, id, &in))
			abort();
		memcpy(dig[i], in.digests, sizeof(dig[i]));
		serve_stack_destroy(&s);
	}
}

static void alone(const struct serve_model *m, uint64_t (*dig)[MAXTOK])
{
	alone_of(m, prompts, NREQ, dig);
}

struct client {
	pthread_t t;
	const char *prompt;
	int priority;
	int status;
	uint64_t dig[MAXTOK];
	uint32_t n;
	char buf[8192];
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	char body[256];

	snprintf(body, sizeof(body), "{\"prompt\": \"%s\", \"max_tokens\": %d, \"priority\": %d}",
		 c->prompt, MAXTOK, c->priority);
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
		c[i].priority = 0;
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

/* The value after "key": in a body, -1 if absent. */
static long json_num(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1L;
}

/*
 * The yield hook (asked by the worker computing a prefill chunk, at its
 * layer boundaries): the first time in a chunk of a request that has KV
 * already (an earlier chunk done), say so on @pipe and hold the chunk there
 * until the scheduler says an urgent request arrived (2 min at most); the
 * driver's own check then yields it.
 */
struct hold {
	struct serve_engine *engine;
	struct accel_sched *sched;
	int pipe;
	int held;
};

static bool hold_prefill(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	struct hold *h = ctx;
	struct serve_req_info in;
	int i;

	(void)layer;
	(void)phase;
	if (!__atomic_load_n(&h->sched, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&h->held, __ATOMIC_ACQUIRE))
		return false;
	if (serve_engine_info(h->engine, id, &in) || !in.n_computed)
		return false;
	if (__atomic_exchange_n(&h->held, 1, __ATOMIC_ACQ_REL))
		return false;
	if (write(h->pipe, "h", 1) != 1)
		return false;
	for (i = 0; i < 24000 && accel_sched_should_yield(h->sched) <= 0; i++)
		usleep(5000);
	return false;
}

#define NLOW	4

FIXTURE(prio) {
	int unused;
};

FIXTURE_SETUP(prio)
{
}

FIXTURE_TEARDOWN(prio)
{
}

TEST_F_TIMEOUT(prio, urgent_request_preempts_by_swap, 600)
{
	/*
	 * 48 bytes each (3 blocks, 4 with the output) on 4 blocks: the urgent one
	 * finishes only with every block, none left to a less urgent one.
	 */
	static const char *const text[NLOW + 1] = {
		"Alpha one: the quick brown fox jumps over a dog.",
		"Bravo two: paged attention reads K and V blocks.",
		"Charlie three: pinned host memory for KV caches.",
		"Delta four: blocks swapped on the copy engine...",
		"Urgent: answer this one first, before the rest!!",
	};
	ACCEL_OPTS(accel_device_info, info);
	uint64_t ref[NLOW + 1][MAXTOK], usage0;
	struct serve_config cfg;
	struct serve_model *m;
	struct serve_stack s;
	/* One request runs at a time: a less urgent one is preempted only for the urgent one. */
	struct serve_driver_opts sched = { .policy = ACCEL_SCHED_PRIORITY, .max_seqs = 1,
					   .chunk_tokens = 16, .preempt = ACCEL_SCHED_PREEMPT_SWAP,
					   .yields = true };
	struct hold hold = { 0 };
	struct serve_stack_opts so = { .blocks = 4, .swap_blocks = 64, .threads = 1,
				       .sched = &sched, .should_yield = hold_prefill,
				       .yield_ctx = &hold };
	struct serve_http_opts ho = { .addr = "127.0.0.1" };
	struct client c[NLOW + 1];
	struct pollfd pf;
	long pre, low_pre = 0;
	struct serve_http *h;
	struct accel_device *dev;
	static char buf[65536];
	int i, pipefd[2], ret;
	char err[256], x;

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
	alone_of(m, text, NLOW + 1, ref);
	ASSERT_EQ(0, pipe(pipefd));
	hold.pipe = pipefd[1];
	so.model = m;
	ASSERT_EQ(0, serve_stack_create(&s, &so, err, sizeof(err))) TH_LOG("%s", err);
	hold.engine = s.engine;
	__atomic_store_n(&hold.sched, serve_driver_sched(s.driver), __ATOMIC_RELEASE);
	ho.driver = s.driver;
	h = serve_http_start(&ho, &ret, err, sizeof(err));
	ASSERT_NE(NULL, h) TH_LOG("%s", err);
	port = serve_http_port(h);

	/* Four of priority 5 at once: the first to prefill is held there. */
	for (i = 0; i < NLOW + 1; i++) {
		c[i].prompt = text[i];
		c[i].priority = i < NLOW ? 5 : 0;
	}
	for (i = 0; i < NLOW; i++)
		ASSERT_EQ(0, pthread_create(&c[i].t, NULL, client_main, &c[i]));
	pf = (struct pollfd) { .fd = pipefd[0], .events = POLLIN };
	ASSERT_EQ(1, poll(&pf, 1, 120000));
	ASSERT_EQ(1, read(pipefd[0], &x, 1));
	/* The urgent one (priority 0) arrives while it is held. */
	ASSERT_EQ(0, pthread_create(&c[NLOW].t, NULL, client_main, &c[NLOW]));
	for (i = 0; i < NLOW + 1; i++) {
		pthread_join(c[i].t, NULL);
		EXPECT_EQ(200, c[i].status) TH_LOG("%s", c[i].buf);
		EXPECT_EQ(MAXTOK, c[i].n);
		EXPECT_EQ(0, memcmp(c[i].dig, ref[i], sizeof(ref[i])))
			TH_LOG("request %d: digests differ from its prompt alone", i);
		pre = json_num(c[i].buf, "\"preemptions\": ");
		if (i < NLOW)
			low_pre += pre;
		else
			EXPECT_EQ(0, pre);
	}
	/* The one held, preempted for the urgent one, and no other. */
	EXPECT_EQ(1, low_pre);

	EXPECT_EQ(200, xfer("GET", "/metrics", NULL, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "\nkvaccel_serve_requests_total{status=\"200\"} 5\n"));
	EXPECT_EQ(1, json_num(buf, "\nkvaccel_serve_swaps_total "));
	EXPECT_EQ(1, json_num(buf, "\nkvaccel_serve_swap_ins_total "));
	TH_LOG("swap-outs %ld, swap-ins %ld; low-priority requests preempted %ld times",
	       json_num(buf, "\nkvaccel_serve_swaps_total "),
	       json_num(buf, "\nkvaccel_serve_swap_ins_total "), low_pre);
	EXPECT_NE(NULL, strstr(buf, "kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"} 0\n"));

	serve_http_stop(h);
	serve_stack_destroy(&s);
	serve_model_free(m);
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_EQ(usage0, accel_test_usage_settled(dev, usage0));
	accel_device_close(dev);
}

TEST_HARNESS_MAIN
