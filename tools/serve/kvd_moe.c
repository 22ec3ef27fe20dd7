// SPDX-License-Identifier: MIT
/* kvaccel-serve - expert copies between engines through kvacceld (pressure.h, moe_peer.h). */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "kvd_int.h"

int serve_kvd_moe(struct serve_kvd *k, uint64_t model)
{
	struct rlimit rl;

	if (!k)
		return -EINVAL;
	if (k->mp)
		return 0;
	/*
	 * Every copy handed over is an fd on both sides until the new store is
	 * made (the peer exports all at once): the soft limit up to the hard one.
	 */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	k->mp = serve_moe_peer_create(k->e, model);
	return k->mp ? 0 : -ENOMEM;
}

int serve_kvd_moe_fetch(struct serve_kvd *k, const char *peer, uint32_t layers,
			uint32_t experts, uint64_t expert_bytes,
			struct accel_moe_store_share **out, uint32_t *n, char *err, size_t errlen)
{
	if (!k || !k->mp) {
		snprintf(err, errlen, "--moe-from needs --kvacceld");
		return -EINVAL;
	}
	return serve_moe_peer_fetch(k->mp, peer, layers, experts, expert_bytes, SERVE_MOE_FETCH_MS,
				    out, n, err, errlen);
}
