// SPDX-License-Identifier: MIT
/*
 * libaccel - creating a KV cache: the configuration checked, the backend
 * chosen by name (kv/kv_backend.h) and the cache built over it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kv/kv_backend.h"

/*
 * "host" (or NULL): 0; "cuda" or "cuda:N" (N a CUDA ordinal, decimal): 1,
 * *gpu = N; anything else: -EINVAL.
 */
static int parse_backend(const char *s, int *gpu)
{
	unsigned long n;
	char *end;

	*gpu = 0;
	if (!s || !strcmp(s, "host"))
		return 0;
	if (!strcmp(s, "cuda"))
		return 1;
	if (strncmp(s, "cuda:", 5) || s[5] < '0' || s[5] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s + 5, &end, 10);
	if (errno || *end || n > 1024)
		return -EINVAL;
	*gpu = (int)n;
	return 1;
}

/* accel_kv_create() from the fields of either version's struct. */
struct accel_kv *kv_create_fields(struct accel_device *dev, uint32_t block_tokens,
				  uint32_t block_bytes, uint32_t device_blocks,
				  uint32_t host_blocks, const char *backend,
				  uint32_t transfer_unit, int host_node, uint32_t flags)
{
	struct kv_backend_config bc = {
		.block_bytes = block_bytes, .device_blocks = device_blocks,
		.host_blocks = host_blocks,
		.transfer_unit = transfer_unit ? transfer_unit : 2u << 20,
		.host_node = flags & ACCEL_KV_HOST_NODE ? host_node : ACCEL_NODE_ANY,
		.flags = flags,
	};
	struct kv_backend *b = NULL;
	int cuda, ret;

	if (!dev || !block_tokens || !device_blocks || !host_blocks || (flags & ~ACCEL_KV_FLAGS)) {
		errno = EINVAL;
		return NULL;
	}
	if (block_tokens > 65536) {
		accel_log(ACCEL_LOG_ERR, "kv: block_tokens %u: at most 65536", block_tokens);
		errno = EINVAL;
		return NULL;
	}
	if (block_bytes < 4096 || block_bytes > (2u << 20) || (block_bytes & (block_bytes - 1))) {
		accel_log(ACCEL_LOG_ERR, "kv: block_bytes %u: a power of two from 4 KiB to 2 MiB",
			  block_bytes);
		errno = EINVAL;
		return NULL;
	}
	if ((flags & ACCEL_KV_HOST_NODE) && host_node < 0) {
		accel_log(ACCEL_LOG_ERR, "kv: host_node %d with ACCEL_KV_HOST_NODE", host_node);
		errno = EINVAL;
		return NULL;
	}
	cuda = parse_backend(backend, &bc.gpu);
	if (cuda < 0) {
		accel_log(ACCEL_LOG_ERR,
			  "kv: unknown backend \"%s\" (\"host\", \"cuda\" or \"cuda:N\")", backend);
		errno = EINVAL;
		return NULL;
	}
	ret = cuda ? kv_backend_cuda_create(dev, &bc, &b) : kv_backend_host_create(dev, &bc, &b);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return kv_cache_create(&bc, block_tokens, b);
}

ACCEL_EXPORT struct accel_kv *accel_kv_create(struct accel_device *dev,
					      const struct accel_kv_config *cfg)
{
	int ret;

	if (!cfg) {
		errno = EINVAL;
		return NULL;
	}
	ret = accel_opts_valid(cfg, sizeof(*cfg));
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return kv_create_fields(dev, ACCEL_OPTS_GET(cfg, block_tokens, 0),
				ACCEL_OPTS_GET(cfg, block_bytes, 0),
				ACCEL_OPTS_GET(cfg, device_blocks, 0),
				ACCEL_OPTS_GET(cfg, host_blocks, 0),
				ACCEL_OPTS_GET(cfg, backend, NULL),
				ACCEL_OPTS_GET(cfg, transfer_unit, 0),
				ACCEL_OPTS_GET(cfg, host_node, 0), ACCEL_OPTS_GET(cfg, flags, 0));
}
__asm__(".symver accel_kv_create, accel_kv_create@@LIBACCEL_0.2, remove");
