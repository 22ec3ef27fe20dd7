// SPDX-License-Identifier: MIT
/*
 * libaccel - prefix-cache block keys (kv_key.h), with libcrypto's SHA-256.
 *
 * The digest input is fixed-width and length-prefixed, so no two
 * different (parent, tokens, extra) triples give the same bytes:
 *   "kvaccel-kv-key-1" | has_parent (1 byte) | parent (32) |
 *   n (u32 LE) | tokens (n x i32 LE) | extra_len (u64 LE) | extra
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "kv_key.h"

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * SHA-256 fetched once, and one digest context per thread (freed when the
 * thread exits): OpenSSL 3's implicit fetch and a context allocation per
 * block cost more than the digest of a 16-token block itself.
 */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static EVP_MD *sha256;

static void ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void sha_init(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	if (pthread_key_create(&ctx_key, ctx_free)) {
		EVP_MD_free(sha256);
		sha256 = NULL;
	}
}

static EVP_MD_CTX *thread_ctx(void)
{
	EVP_MD_CTX *ctx;

	pthread_once(&sha_once, sha_init);
	if (!sha256)
		return NULL;
	ctx = pthread_getspecific(ctx_key);
	if (!ctx) {
		ctx = EVP_MD_CTX_new();
		if (ctx && pthread_setspecific(ctx_key, ctx)) {
			EVP_MD_CTX_free(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}

int kv_key_block(const struct kv_key *parent, const int32_t *tokens, uint32_t n,
		 const void *extra, size_t extra_len, struct kv_key *out)
{
	static const char tag[] = "kvaccel-kv-key-1";
	uint8_t head[1 + KV_KEY_BYTES + 4], buf[256], len[8];
	unsigned int got = 0;
	EVP_MD_CTX *ctx;
	uint32_t i, k;
	int ok;

	head[0] = parent != NULL;
	memset(head + 1, 0, KV_KEY_BYTES);
	if (parent)
		memcpy(head + 1, parent->b, KV_KEY_BYTES);
	le32(head + 1 + KV_KEY_BYTES, n);
	for (i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)extra_len >> (8 * i));
	ctx = thread_ctx();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex2(ctx, sha256, NULL) &&
	     EVP_DigestUpdate(ctx, tag, sizeof(tag) - 1) &&
	     EVP_DigestUpdate(ctx, head, sizeof(head));
	for (i = 0; ok && i < n; i += k) {
		for (k = 0; k < sizeof(buf) / 4 && i + k < n; k++)
			le32(buf + 4 * k, (uint32_t)tokens[i + k]);
		ok = EVP_DigestUpdate(ctx, buf, 4 * k);
	}
	ok = ok && EVP_DigestUpdate(ctx, len, sizeof(len)) &&
	     (!extra_len || EVP_DigestUpdate(ctx, extra, extra_len)) &&
	     EVP_DigestFinal_ex(ctx, out->b, &got) && got == KV_KEY_BYTES;
	return ok ? 0 : -EIO;
}
