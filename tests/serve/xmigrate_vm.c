// SPDX-License-Identifier: MIT
/*
 * One side of a cross-node live migration (migrate_net.h), for
 * tests/serve/xmigrate_netns.sh: the destination and the source run in two
 * network namespaces of the VM joined by a veth pair, UCX over tcp. The
 * requests and checks are tests/serve/xmigrate_roles.h's.
 *
 *   serve_xmigrate_vm dst ADDR PORT ok|aborted|either TIMEOUT_MS
 *   serve_xmigrate_vm src ADDR PORT ok|resume|lost|cmd MAX_STAGES FINAL_BLOCKS [COMMAND [AFTER]]
 *
 * cmd: COMMAND runs once mid-stages, AFTER once the migration is over;
 * lost: no answer after its commit, the request failed to its client;
 * either: the request arrives and finishes, or it is aborted;
 * XMIG_SRC_TIMEOUT_MS sets the source's timeout; SERVE_XMIG_DIE_AT
 * (migrate_net.c) kills the process at a point of the protocol.
 *
 *   serve_xmigrate_vm
 *
 * Without arguments (make check's VM runs every test program so): runs
 * /tests/xmig/xmigrate_netns.sh when it and iproute2's ip
 * (/tests/xmig/ip-iproute2) were shipped (tests/serve/xmigrate_netns_vm.sh
 * does), else prints one SKIP line.
 *
 * Exit status: 0 as expected; a source that kept its request exits with
 * the errno its migration failed with (the script checks which); 100 and
 * up: a check failed (the line number).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xmigrate_roles.h"

#define NETNS_SH	"/tests/xmig/xmigrate_netns.sh"
#define NETNS_IP	"/tests/xmig/ip-iproute2"

static int usage(void)
{
	fprintf(stderr, "usage: serve_xmigrate_vm dst ADDR PORT ok|aborted|either TIMEOUT_MS\n"
		"       serve_xmigrate_vm src ADDR PORT ok|resume|lost|cmd MAX_STAGES FINAL_BLOCKS "
		"[COMMAND]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct accel_xfer_ep *ep = NULL;
	struct accel_xfer *x;
	uint16_t port;
	int st, ret;

	if (argc == 1) {
		if (access(NETNS_SH, X_OK) || access(NETNS_IP, X_OK)) {
			printf("1..1\nok 1 - serve_xmigrate_vm # SKIP %s or %s not shipped "
			       "(tests/serve/xmigrate_netns_vm.sh runs it)\n", NETNS_SH, NETNS_IP);
			return 0;
		}
		execl("/bin/sh", "sh", NETNS_SH, (char *)NULL);
		return 127;
	}
	if (argc < 6)
		return usage();
	setenv("UCX_TLS", "tcp", 0);
	setenv("UCX_MEM_MALLOC_HOOKS", "no", 0);
	setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	port = (uint16_t)atoi(argv[3]);
	CKR(refs_compute(), 0);	/* before UCX: the references, each request alone */
	if (!strcmp(argv[1], "dst")) {
		enum dst_kind k = !strcmp(argv[4], "ok") ? DST_OK :
				  !strcmp(argv[4], "either") ? DST_EITHER : DST_ABORTED;

		x = mkx();
		CKR(accel_xfer_listen(x, argv[2], port, NULL), 0);
		fprintf(stderr, "# destination: listening on %s:%u\n", argv[2], port);
		st = dst_role(k, x, (uint32_t)atoi(argv[5]));
		accel_xfer_destroy(x);
		serve_model_free(model);
		return st;
	}
	if (strcmp(argv[1], "src") || argc < 7)
		return usage();
	if (argc > 7)
		src_mid_cmd = argv[7];
	if (argc > 8)
		src_after_cmd = argv[8];
	if (getenv("XMIG_SRC_TIMEOUT_MS"))
		src_timeout_ms = (uint32_t)atoi(getenv("XMIG_SRC_TIMEOUT_MS"));
	x = mkx();
	for (int i = 0; i < 60; i++) {	/* the destination may not listen yet */
		ret = accel_xfer_connect(x, argv[2], port, 5000000000ll, &ep);
		if (!ret)
			break;
		fprintf(stderr, "# source: connect %s:%u: %s\n", argv[2], port, strerror(-ret));
		sleep(1);
	}
	CKR(ret, 0);
	st = src_role(!strcmp(argv[4], "ok") ? SRC_OK : !strcmp(argv[4], "cmd") ? SRC_CMD :
		      !strcmp(argv[4], "lost") ? SRC_LOST : SRC_RESUME, x, ep,
		      (uint32_t)atoi(argv[5]), (uint32_t)atoi(argv[6]));
	accel_xfer_ep_close(ep);
	accel_xfer_destroy(x);
	serve_model_free(model);
	fprintf(stderr, "# source: exit %d\n", st);
	return st;
}
