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

#include "kv_key.h"

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
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
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
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
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}
