// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's safetensors files: a save/load round trip (dense and
 * MoE) gives the same tensors and shape; bad files are refused with a
 * message naming the problem (truncated, wrong dtype, wrong shape, bad
 * JSON, missing and extra tensors, bad metadata).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model.h"
#include "safetensors.h"

static char dir[] = "/tmp/serve_st.XXXXXX";
static char good[64], bad[64];

static struct serve_model *model_of(uint32_t experts, uint32_t shared)
{
	struct serve_config c;

	serve_config_default(&c);
	c.experts = experts;
	c.shared_expert = shared;
	c.kv_heads = 2;
	return serve_model_from_seed(&c, 3);
}

static void same_model(struct serve_model *a, struct serve_model *b)
{
	uint32_t n = serve_model_tensors(a, NULL, 0), i;
	struct serve_tensor *ta = calloc(n, sizeof(*ta)), *tb = calloc(n, sizeof(*tb));

	assert_memory_equal(&a->cfg, &b->cfg, sizeof(a->cfg));
	assert_int_equal(serve_model_tensors(b, NULL, 0), n);
	serve_model_tensors(a, ta, n);
	serve_model_tensors(b, tb, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(ta[i].name, tb[i].name);
		assert_memory_equal(*ta[i].data, *tb[i].data,
				    (size_t)ta[i].rows * (ta[i].cols ? ta[i].cols : 1) * 4);
	}
	free(ta);
	free(tb);
}

static void round_trip(uint32_t experts, uint32_t shared)
{
	struct serve_model *a = model_of(experts, shared), *b;
	struct serve_config other;
	char err[256];

	assert_non_null(a);
	assert_int_equal(serve_st_save(a, good, err, sizeof(err)), 0);
	/* The file's shape wins over the caller's. */
	serve_config_default(&other);
	b = serve_st_load(good, &other, err, sizeof(err));
	if (!b)
		fail_msg("%s", err);
	same_model(a, b);
	serve_model_free(a);
	serve_model_free(b);
}

static void test_round_trip(void **state)
{
	(void)state;
	round_trip(0, 0);
	round_trip(4, 0);
	round_trip(3, 1);
}

/* The saved file's header and data, to make bad ones from. */
struct file {
	char *hdr;
	unsigned char *data;
	size_t data_len;
};

static void load_good(struct file *f)
{
	struct serve_model *m = model_of(0, 0);
	char err[256];
	uint64_t hlen;
	long len;
	FILE *fp;

	assert_int_equal(serve_st_save(m, good, err, sizeof(err)), 0);
	serve_model_free(m);
	fp = fopen(good, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	assert_int_equal(fread(&hlen, 8, 1, fp), 1);
	f->hdr = calloc(hlen + 1, 1);
	assert_int_equal(fread(f->hdr, 1, hlen, fp), hlen);
	f->data_len = (size_t)len - 8 - hlen;
	f->data = malloc(f->data_len);
	assert_int_equal(fread(f->data, 1, f->data_len, fp), f->data_len);
	fclose(fp);
}

static void write_bad(const char *hdr, const unsigned char *data, size_t len)
{
	uint64_t hlen = strlen(hdr);
	FILE *fp = fopen(bad, "wb");

	assert_non_null(fp);
	fwrite(&hlen, 8, 1, fp);
	fwrite(hdr, 1, hlen, fp);
	fwrite(data, 1, len, fp);
	fclose(fp);
}

/* @hdr with the first @from replaced by @to. */
static char *edit(const char *hdr, const char *from, const char *to)
{
	const char *p = strstr(hdr, from);
	char *out;

	assert_non_null(p);
	out = calloc(strlen(hdr) + strlen(to) + 1, 1);
	memcpy(out, hdr, (size_t)(p - hdr));
	strcat(out, to);
	strcat(out, p + strlen(from));
	return out;
}

static void refused(const char *why)
{
	struct serve_config c;
	char err[256] = "";

	serve_config_default(&c);
	errno = 0;
	if (serve_st_load(bad, &c, err, sizeof(err)))
		fail_msg("a bad file (%s) was loaded", why);
	assert_int_not_equal(errno, 0);
	if (!strstr(err, why))
		fail_msg("message '%s' does not say '%s'", err, why);
}

static void test_bad_files(void **state)
{
	struct file f;
	char *h;

	(void)state;
	load_good(&f);
	/* Truncated: the data cut short, the header cut short, a few bytes. */
	write_bad(f.hdr, f.data, f.data_len / 2);
	refused("truncated");
	write_bad(f.hdr, f.data, 0);
	refused("truncated");
	{
		FILE *fp = fopen(bad, "wb");

		fwrite("\x10\x00", 1, 2, fp);
		fclose(fp);
	}
	refused("too short");
	{
		uint64_t big = 1ull << 40;
		FILE *fp = fopen(bad, "wb");

		fwrite(&big, 8, 1, fp);
		fwrite("{}", 1, 2, fp);
		fclose(fp);
	}
	refused("header of");
	/* Wrong dtype, wrong shapes. */
	h = edit(f.hdr, "\"F32\"", "\"BF16\"");
	write_bad(h, f.data, f.data_len);
	refused("dtype BF16, only F32");
	free(h);
	h = edit(f.hdr, "\"shape\":[256,64]", "\"shape\":[256,32]");
	write_bad(h, f.data, f.data_len);
	refused("shape [256,32], the model needs [256, 64]");
	free(h);
	h = edit(f.hdr, "\"shape\":[64]", "\"shape\":[64,1]");
	write_bad(h, f.data, f.data_len);
	refused("the model needs [64]");
	free(h);
	/* Bad JSON, and JSON of the wrong kind. */
	h = edit(f.hdr, "\"dtype\"", "dtype");
	write_bad(h, f.data, f.data_len);
	refused("bad JSON header");
	free(h);
	write_bad("[1, 2, 3]", f.data, f.data_len);
	refused("not an object");
	h = edit(f.hdr, "}", "}}");
	write_bad(h, f.data, f.data_len);
	refused("bad JSON header");
	free(h);
	/* Offsets that do not fit the shape. */
	h = edit(f.hdr, "\"data_offsets\":[0,65536]", "\"data_offsets\":[0,65532]");
	write_bad(h, f.data, f.data_len);
	refused("65532 bytes of data for 65536");
	free(h);
	h = edit(f.hdr, "\"data_offsets\":[0,65536]", "\"data_offsets\":[0]");
	write_bad(h, f.data, f.data_len);
	refused("no data_offsets");
	free(h);
	/* Missing, extra and renamed tensors. */
	h = edit(f.hdr, "model.norm.weight", "model.norm.weights");
	write_bad(h, f.data, f.data_len);
	refused("tensor model.norm.weight missing");
	free(h);
	/* Metadata: a shape the file's tensors do not have, and junk. */
	h = edit(f.hdr, "\"kvaccel.layers\":\"2\"", "\"kvaccel.layers\":\"3\"");
	write_bad(h, f.data, f.data_len);
	refused("tensor model.layers.2.input_layernorm.weight missing");
	free(h);
	h = edit(f.hdr, "\"kvaccel.layers\":\"2\"", "\"kvaccel.layers\":\"1\"");
	write_bad(h, f.data, f.data_len);
	refused("tensor model.layers.1.input_layernorm.weight is not part of this model");
	free(h);
	h = edit(f.hdr, "\"kvaccel.heads\":\"4\"", "\"kvaccel.heads\":\"four\"");
	write_bad(h, f.data, f.data_len);
	refused("is not a count");
	free(h);
	h = edit(f.hdr, "\"kvaccel.heads\":\"4\"", "\"kvaccel.heads\":\"3\"");
	write_bad(h, f.data, f.data_len);
	refused("heads (3) must divide d_model");
	free(h);
	/* No file, a directory. */
	refused("");
	{
		struct serve_config c;
		char err[256];

		serve_config_default(&c);
		assert_null(serve_st_load("/nonexistent/w.safetensors", &c, err, sizeof(err)));
		assert_int_equal(errno, ENOENT);
		assert_non_null(strstr(err, "No such file"));
		assert_null(serve_st_load(dir, &c, err, sizeof(err)));
		assert_non_null(strstr(err, "not a regular file"));
	}
	/* And the untouched header still loads. */
	write_bad(f.hdr, f.data, f.data_len);
	{
		struct serve_config c;
		char err[256];
		struct serve_model *m;

		serve_config_default(&c);
		m = serve_st_load(bad, &c, err, sizeof(err));
		assert_non_null(m);
		serve_model_free(m);
	}
	free(f.hdr);
	free(f.data);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(good, sizeof(good), "%s/good.safetensors", dir);
	snprintf(bad, sizeof(bad), "%s/bad.safetensors", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(good);
	unlink(bad);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
