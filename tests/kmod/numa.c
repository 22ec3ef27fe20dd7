// SPDX-License-Identifier: GPL-2.0-only
/*
 * NUMA placement: the guest has the topology the runner asked for
 * (KVTEST_NODES), and a region created for a node lies on it, as the
 * kernel's own per-mapping statistics (/proc/self/numa_maps) confirm.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

static int online_nodes(int *ids, int max)
{
	char path[64];
	int n = 0, i;

	for (i = 0; i < 1024 && n < max; i++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", i);
		if (!access(path, F_OK))
			ids[n++] = i;
	}
	return n;
}

TEST(topology_as_requested)
{
	const char *want = getenv("KVTEST_NODES");
	int ids[64];

	if (!want)
		SKIP(return, "KVTEST_NODES not set: no topology was requested");
	EXPECT_EQ(atoi(want), online_nodes(ids, 64));
}

/* Pages of the mapping at @addr on node @nid, from numa_maps; -1 if absent. */
static long numa_maps_pages(void *addr, int nid)
{
	char line[1024], key[32], start[32];
	long pages = -1;
	FILE *f = fopen("/proc/self/numa_maps", "r");

	if (!f)
		return -1;
	snprintf(start, sizeof(start), "%lx ", (unsigned long)addr);
	snprintf(key, sizeof(key), " N%d=", nid);
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, start, strlen(start)))
			continue;
		p = strstr(line, key);
		pages = p ? strtol(p + strlen(key), NULL, 10) : 0;
		break;
	}
	fclose(f);
	return pages;
}

TEST(region_on_each_node)
{
	int ids[64], n = online_nodes(ids, 64), i, fd = kvt_open();
	const uint64_t size = 4 * KVT_MIB;

	ASSERT_LE(0, fd);
	ASSERT_LE(1, n);
	for (i = 0; i < n; i++) {
		struct drm_kvaccel_region_info info;
		uint32_t bs, h;
		void *p;
		long pages;

		for (bs = 4096; bs <= 2 * KVT_MIB; bs <<= 9) {
			int ret = kvt_region_create_ex(fd, size, bs,
						       KVACCEL_REGION_CREATE_NUMA_NODE,
						       ids[i], &h);

			if (ret == -ENOMEM)
				continue;	/* a small node may have no such block */
			ASSERT_EQ(0, ret) TH_LOG("node %d, block %u", ids[i], bs);
			ASSERT_EQ(0, kvt_region_info(fd, h, &info));
			EXPECT_EQ(ids[i], info.numa_node);
			p = kvt_region_map(fd, h, size);
			ASSERT_NE(MAP_FAILED, p);
			pages = numa_maps_pages(p, ids[i]);
			if (pages >= 0)
				EXPECT_EQ((long)(size / 4096), pages)
					TH_LOG("node %d, block %u", ids[i], bs);
			munmap(p, size);
			ASSERT_EQ(0, kvt_close_handle(fd, h));
		}
	}
	close(fd);
}

TEST_HARNESS_MAIN
