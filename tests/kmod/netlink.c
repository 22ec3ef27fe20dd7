// SPDX-License-Identifier: GPL-2.0-only
/*
 * The generic netlink family "kvaccel": the device reply against
 * GET_PARAM, the client and region dumps (handle counts, bound slots,
 * exports, multi-part dumps), admin operations and their validation,
 * what an unprivileged caller may do and see, the events group, pressure
 * hysteresis and copy-error events, and the family in other network
 * namespaces (root's: everything; an unprivileged user's own: nothing more
 * than in the initial one, and no events).
 */
#include <grp.h>
#include <sched.h>
#include <sys/wait.h>

#include "kvtest.h"
#include "kvnl.h"
#include "kselftest_harness.h"

#define NL_MAX	512

struct nl_obj {
	int cmd;
	uint64_t id, usage, quota, size, block_size, region_id, job_id;
	uint32_t pid, uid, regions, rh, sh, ih, bound;
	int32_t node, error;
	uint8_t exported, pressure, held, read_only;
	uint64_t import_id;
	char comm[32];
};

struct nl_list {
	int n;
	struct nl_obj o[NL_MAX];
};

static int t_collect(const struct kvnl_msg *m, void *arg)
{
	struct nl_list *l = arg;
	struct nl_obj *o;
	const char *comm;

	if (l->n == NL_MAX)
		return -ENOSPC;
	o = &l->o[l->n++];
	memset(o, 0, sizeof(*o));
	o->cmd = m->cmd;
	kvnl_u64(m, KVACCEL_A_CLIENT_ID, &o->id);
	kvnl_u64(m, KVACCEL_A_USAGE, &o->usage);
	kvnl_u64(m, KVACCEL_A_QUOTA, &o->quota);
	kvnl_u64(m, KVACCEL_A_SIZE, &o->size);
	kvnl_u64(m, KVACCEL_A_BLOCK_SIZE, &o->block_size);
	kvnl_u64(m, KVACCEL_A_REGION_ID, &o->region_id);
	kvnl_u64(m, KVACCEL_A_JOB_ID, &o->job_id);
	kvnl_u32(m, KVACCEL_A_PID, &o->pid);
	kvnl_u32(m, KVACCEL_A_UID, &o->uid);
	kvnl_u32(m, KVACCEL_A_REGIONS, &o->regions);
	kvnl_u32(m, KVACCEL_A_REGION_HANDLES, &o->rh);
	kvnl_u32(m, KVACCEL_A_SPACE_HANDLES, &o->sh);
	kvnl_u32(m, KVACCEL_A_IMPORT_HANDLES, &o->ih);
	kvnl_u32(m, KVACCEL_A_BOUND_SLOTS, &o->bound);
	kvnl_s32(m, KVACCEL_A_NODE, &o->node);
	kvnl_s32(m, KVACCEL_A_ERROR, &o->error);
	kvnl_u8(m, KVACCEL_A_EXPORTED, &o->exported);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &o->pressure);
	kvnl_u8(m, KVACCEL_A_HELD, &o->held);
	kvnl_u8(m, KVACCEL_A_READ_ONLY, &o->read_only);
	kvnl_u64(m, KVACCEL_A_IMPORT_ID, &o->import_id);
	comm = kvnl_str(m, KVACCEL_A_COMM);
	if (comm)
		snprintf(o->comm, sizeof(o->comm), "%s", comm);
	return 0;
}

struct nl_dev {
	uint64_t limit, usage, default_quota, high, low, pages, jobs, errors;
	uint32_t abi, regions, clients, workers;
	uint8_t pressure;
};

static int t_dev_cb(const struct kvnl_msg *m, void *arg)
{
	struct nl_dev *d = arg;

	if (!kvnl_u64(m, KVACCEL_A_LIMIT, &d->limit) ||
	    !kvnl_u64(m, KVACCEL_A_USAGE, &d->usage) ||
	    !kvnl_u64(m, KVACCEL_A_DEFAULT_QUOTA, &d->default_quota) ||
	    !kvnl_u64(m, KVACCEL_A_HIGH_WM, &d->high) ||
	    !kvnl_u64(m, KVACCEL_A_LOW_WM, &d->low) ||
	    !kvnl_u64(m, KVACCEL_A_PAGES_HELD, &d->pages) ||
	    !kvnl_u64(m, KVACCEL_A_COPY_JOBS, &d->jobs) ||
	    !kvnl_u64(m, KVACCEL_A_COPY_ERRORS, &d->errors) ||
	    !kvnl_u32(m, KVACCEL_A_ABI_VERSION, &d->abi) ||
	    !kvnl_u32(m, KVACCEL_A_REGIONS, &d->regions) ||
	    !kvnl_u32(m, KVACCEL_A_CLIENTS, &d->clients) ||
	    !kvnl_u32(m, KVACCEL_A_COPY_WORKERS, &d->workers) ||
	    !kvnl_u8(m, KVACCEL_A_PRESSURE, &d->pressure))
		return -EBADMSG;
	return 0;
}

static int t_device(struct kvnl *nl, struct nl_dev *d)
{
	memset(d, 0, sizeof(*d));
	return kvnl_exec(nl, kvnl_request(nl, KVACCEL_CMD_DEVICE_GET, false), t_dev_cb, d);
}

static int t_dump(struct kvnl *nl, int cmd, struct nl_list *l)
{
	l->n = 0;
	return kvnl_exec(nl, kvnl_request(nl, cmd, true), t_collect, l);
}

/* DEVICE_SET or QUOTA_SET with attribute/value pairs (u32 for PID). */
static int t_set(struct kvnl *nl, int cmd, int n, const int *attrs, const uint64_t *vals)
{
	struct nl_msg *msg = kvnl_request(nl, cmd, false);
	int i;

	for (i = 0; msg && i < n; i++) {
		int ret = attrs[i] == KVACCEL_A_PID ?
			  nla_put_u32(msg, attrs[i], (uint32_t)vals[i]) :
			  nla_put_u64(msg, attrs[i], vals[i]);

		if (ret) {
			nlmsg_free(msg);
			msg = NULL;
		}
	}
	return kvnl_exec(nl, msg, NULL, NULL);
}

static int t_watermarks(struct kvnl *nl, uint64_t high, uint64_t low)
{
	const int a[] = { KVACCEL_A_HIGH_WM, KVACCEL_A_LOW_WM };
	const uint64_t v[] = { high, low };

	return t_set(nl, KVACCEL_CMD_DEVICE_SET, 2, a, v);
}

static int t_quota(struct kvnl *nl, uint32_t pid, uint64_t quota)
{
	const int a[] = { KVACCEL_A_PID, KVACCEL_A_QUOTA };
	const uint64_t v[] = { pid, quota };

	return t_set(nl, KVACCEL_CMD_QUOTA_SET, 2, a, v);
}

/* Events received within @ms (0: those already queued). */
static int t_events(struct kvnl *ev, struct nl_list *l, int ms)
{
	int ret;

	l->n = 0;
	do {
		ret = kvnl_wait_events(ev, ms, t_collect, l);
		ms = 0;
	} while (ret > 0);
	return ret;
}

/* The identifier an event is about: its client, region or job. */
static uint64_t t_key(const struct nl_obj *o)
{
	switch (o->cmd) {
	case KVACCEL_CMD_REGION_CREATE_NTF:
	case KVACCEL_CMD_REGION_DESTROY_NTF:
		return o->region_id;
	case KVACCEL_CMD_COPY_ERROR_NTF:
		return o->job_id;
	default:
		return o->id;
	}
}

/* Wait until @l holds an event @cmd of this process about @key (0: any). */
static struct nl_obj *t_wait_for(struct kvnl *ev, struct nl_list *l, int cmd,
				  uint64_t key, int ms)
{
	int64_t end = kvt_now_ns() + (int64_t)ms * 1000000;
	int i;

	for (;;) {
		for (i = 0; i < l->n; i++) {
			struct nl_obj *o = &l->o[i];

			if (o->cmd == cmd && o->pid == (uint32_t)getpid() &&
			    (!key || t_key(o) == key))
				return o;
		}
		if (kvt_now_ns() > end || l->n == NL_MAX ||
		    kvnl_wait_events(ev, 200, t_collect, l) < 0)
			return NULL;
	}
}

static int count_cmd(const struct nl_list *l, int cmd)
{
	int i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->o[i].cmd == cmd;
	return n;
}

static uint64_t region_id(int fd, uint32_t handle)
{
	struct drm_kvaccel_region_info info;

	if (kvt_region_info(fd, handle, &info))
		return 0;
	return info.region_id;
}

static struct nl_obj *find_region(struct nl_list *l, uint64_t id)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->o[i].region_id == id)
			return &l->o[i];
	return NULL;
}

FIXTURE(nl) {
	int fd;
	struct kvnl *nl;
	struct nl_list l;
};

FIXTURE_SETUP(nl)
{
	int ret;

	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	ret = kvnl_open(&self->nl);
	ASSERT_EQ(0, ret) TH_LOG("kvnl_open: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(nl)
{
	kvnl_close(self->nl);
	close(self->fd);
}

TEST_F(nl, device_matches_get_param)
{
	struct nl_dev d;
	uint32_t h;

	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * KVT_MIB, 64 * 1024, &h));
	ASSERT_EQ(0, t_device(self->nl, &d));
	EXPECT_EQ(KVACCEL_ABI_VERSION, d.abi);
	EXPECT_EQ(kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT), d.limit);
	EXPECT_EQ(kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE), d.usage);
	EXPECT_EQ(kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD), d.pages);
	EXPECT_EQ(kvt_param_or_die(self->fd, KVACCEL_PARAM_REGIONS), d.regions);
	EXPECT_LE(4 * KVT_MIB, d.usage);
	EXPECT_LE(1, d.clients);
	EXPECT_LE(1, d.workers);
	EXPECT_EQ(0, d.high);
	EXPECT_EQ(0, d.pressure);
	EXPECT_NE(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CAPABILITIES) &
		     KVACCEL_CAP_NETLINK);
}

TEST_F(nl, client_dump_counts_handles)
{
	uint32_t r1, r2, sp;
	int fd2, i, mine = 0;
	char comm[32] = "";
	struct nl_obj *c = NULL;

	fd2 = kvt_open();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kvt_region_create(fd2, KVT_MIB, 4096, &r1));
	ASSERT_EQ(0, kvt_region_create(fd2, 2 * KVT_MIB, 4096, &r2));
	ASSERT_EQ(0, kvt_space_create(fd2, 4, 4096, &sp));
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_CLIENT_GET, &self->l));
	kvt_read_file("/proc/self/comm", comm, sizeof(comm));
	comm[strcspn(comm, "\n")] = '\0';

	for (i = 0; i < self->l.n; i++) {
		struct nl_obj *o = &self->l.o[i];

		EXPECT_EQ(KVACCEL_CMD_CLIENT_GET, o->cmd);
		if (o->pid != (uint32_t)getpid())
			continue;
		mine++;
		EXPECT_STREQ(comm, o->comm);
		EXPECT_EQ(kvt_param_or_die(fd2, KVACCEL_PARAM_CLIENT_USAGE), o->usage);
		EXPECT_EQ(kvt_param_or_die(fd2, KVACCEL_PARAM_CLIENT_QUOTA), o->quota);
		EXPECT_EQ(0, o->uid);
		if (o->rh)
			c = o;
	}
	EXPECT_EQ(2, mine);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(2, c->rh);
	EXPECT_EQ(1, c->sh);
	EXPECT_EQ(0, c->ih);
	EXPECT_EQ(2, c->regions);

	/* Closing handles is seen; closing the file removes the client. */
	ASSERT_EQ(0, kvt_close_handle(fd2, r1));
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_CLIENT_GET, &self->l));
	for (i = 0; i < self->l.n; i++)
		if (self->l.o[i].id == c->id)
			EXPECT_EQ(1, self->l.o[i].rh);
	close(fd2);
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_CLIENT_GET, &self->l));
	for (i = 0; i < self->l.n; i++)
		EXPECT_NE(c->id, self->l.o[i].id);
}

TEST_F(nl, region_dump_tracks_binds_and_exports)
{
	struct drm_kvaccel_bind_op ops[2];
	uint32_t r, sp;
	uint64_t id;
	struct nl_obj *o;
	int dmabuf;

	ASSERT_EQ(0, kvt_region_create(self->fd, KVT_MIB, 4096, &r));
	id = region_id(self->fd, r);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	o = find_region(&self->l, id);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(KVT_MIB, o->size);
	EXPECT_EQ(4096, o->block_size);
	EXPECT_EQ((uint32_t)getpid(), o->pid);
	EXPECT_EQ(0, o->bound);
	EXPECT_EQ(0, o->exported);

	ASSERT_EQ(0, kvt_space_create(self->fd, 4, 4096, &sp));
	ops[0] = kvt_op_bind(0, r, 3);
	ops[1] = kvt_op_bind(2, r, 7);
	ASSERT_EQ(0, kvt_space_bind(self->fd, sp, ops, 2, NULL));
	ASSERT_EQ(0, kvt_export(self->fd, r, &dmabuf));
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	o = find_region(&self->l, id);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(2, o->bound);
	EXPECT_EQ(1, o->exported);

	/* The space's end unbinds; the dma-buf keeps the region alive. */
	ASSERT_EQ(0, kvt_close_handle(self->fd, sp));
	ASSERT_EQ(0, kvt_close_handle(self->fd, r));
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	o = find_region(&self->l, id);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(0, o->bound);
	close(dmabuf);
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	EXPECT_EQ(NULL, find_region(&self->l, id));
}

static struct nl_obj *find_import(struct nl_list *l, uint64_t id)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->o[i].cmd == KVACCEL_CMD_IMPORT_GET && l->o[i].import_id == id)
			return &l->o[i];
	return NULL;
}

/* Imports are listed (held or not) until their last handle goes. */
TEST_F(nl, import_dump_lists_imports)
{
	int vgem = kvt_open_driver("vgem", 1), dmabuf;
	struct drm_kvaccel_region_info info;
	struct nl_obj *o;
	uint32_t vh, imp;

	if (vgem < 0)
		SKIP(return, "no vgem");
	ASSERT_EQ(0, kvt_vgem_buffer(vgem, KVT_MIB, &vh, &dmabuf));
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &imp));
	ASSERT_EQ(0, kvt_region_info(self->fd, imp, &info));
	ASSERT_NE(0, info.region_id);
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_IMPORT_GET, &self->l));
	o = find_import(&self->l, info.region_id);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(KVT_MIB, o->size);
	EXPECT_EQ((uint32_t)getpid(), o->pid);
	EXPECT_EQ(getuid(), o->uid);
	EXPECT_EQ(0, o->held);
	EXPECT_EQ(0, o->read_only);
	/* Import ids never collide with region ids. */
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	EXPECT_EQ(NULL, find_region(&self->l, info.region_id));
	close(dmabuf);
	close(vgem);
	ASSERT_EQ(0, kvt_close_handle(self->fd, imp));
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_IMPORT_GET, &self->l));
	EXPECT_EQ(NULL, find_import(&self->l, info.region_id));
}

/* More regions than one message buffer holds: the dump resumes by id. */
TEST_F(nl, region_dump_in_parts)
{
	static uint64_t ids[300];
	uint32_t h;
	int i;

	for (i = 0; i < 300; i++) {
		ASSERT_EQ(0, kvt_region_create(self->fd, 4096, 4096, &h));
		ids[i] = region_id(self->fd, h);
	}
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_REGION_GET, &self->l));
	EXPECT_LE(300, self->l.n);
	for (i = 1; i < self->l.n; i++)
		EXPECT_LT(self->l.o[i - 1].region_id, self->l.o[i].region_id);
	for (i = 0; i < 300; i++)
		EXPECT_NE(NULL, find_region(&self->l, ids[i]));
}

TEST_F(nl, admin_ops_validate)
{
	const int lim[] = { KVACCEL_A_LIMIT }, usage[] = { KVACCEL_A_USAGE };
	const int pid_only[] = { KVACCEL_A_PID };
	uint64_t v[] = { 3000 * 1024 };
	uint64_t pid1[] = { 1 };

	EXPECT_EQ(-EINVAL, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, lim, v));
	EXPECT_NE(NULL, strstr(kvnl_errmsg(self->nl), "1 MiB"));
	/* Attributes only the kernel sends are refused (strict policy). */
	EXPECT_EQ(-EINVAL, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, usage, v));
	EXPECT_EQ(-EINVAL, t_watermarks(self->nl, 4 * KVT_MIB, 8 * KVT_MIB));
	EXPECT_EQ(-EINVAL, t_watermarks(self->nl, 4 * KVT_MIB, 0));
	EXPECT_EQ(-EINVAL, t_watermarks(self->nl, 0, 4 * KVT_MIB));
	EXPECT_EQ(-EINVAL, t_set(self->nl, KVACCEL_CMD_QUOTA_SET, 1, pid_only, pid1));
	/* Out of the policy's range. */
	EXPECT_EQ(-ERANGE, t_quota(self->nl, 0, KVT_MIB));
	/* init never opened the device. */
	EXPECT_EQ(-ESRCH, t_quota(self->nl, 1, KVT_MIB));
	EXPECT_EQ(-ESRCH, t_quota(self->nl, 0x7ffffff0, KVT_MIB));
	EXPECT_EQ(-EOPNOTSUPP, kvnl_exec(self->nl, kvnl_request(self->nl, 200, false),
					 NULL, NULL));
}

TEST_F(nl, admin_ops_apply)
{
	const int lim[] = { KVACCEL_A_LIMIT }, dq[] = { KVACCEL_A_DEFAULT_QUOTA };
	uint64_t old_limit = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT);
	long long old_limit_mb = kvt_read_ll("/sys/module/kvaccel/parameters/limit_mb");
	uint64_t v[1];
	uint32_t h;

	ASSERT_LE(0, old_limit_mb);
	v[0] = 64 * KVT_MIB;
	ASSERT_EQ(0, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, lim, v));
	EXPECT_EQ(64 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT));
	EXPECT_EQ(64, kvt_read_ll("/sys/module/kvaccel/parameters/limit_mb"));
	EXPECT_EQ(-ENOMEM, kvt_region_create(self->fd, 128 * KVT_MIB, 2 * KVT_MIB, &h));
	v[0] = (uint64_t)old_limit_mb << 20;
	ASSERT_EQ(0, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, lim, v));
	EXPECT_EQ(old_limit, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT));

	v[0] = 8 * KVT_MIB;
	ASSERT_EQ(0, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, dq, v));
	EXPECT_EQ(8 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_QUOTA));
	ASSERT_EQ(0, t_quota(self->nl, getpid(), 4 * KVT_MIB));
	EXPECT_EQ(4 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_QUOTA));
	EXPECT_EQ(-EDQUOT, kvt_region_create(self->fd, 6 * KVT_MIB, 4096, &h));
	ASSERT_EQ(0, t_quota(self->nl, getpid(), 0));
	EXPECT_EQ(8 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_QUOTA));
	EXPECT_EQ(0, kvt_region_create(self->fd, 6 * KVT_MIB, 4096, &h));
	v[0] = 0;
	ASSERT_EQ(0, t_set(self->nl, KVACCEL_CMD_DEVICE_SET, 1, dq, v));
	EXPECT_EQ(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_QUOTA));
}

/* A child without CAP_NET_ADMIN (and, if asked, another uid) reports what it may do. */
static int unprivileged_child(uint64_t parent_client, uint64_t parent_region, int other_uid)
{
	struct nl_list *l = calloc(1, sizeof(*l));
	struct kvnl *nl = NULL;
	struct nl_dev d;
	int i, seen_client = 0, seen_region = 0;

	if (!l)
		return 10;
	if (other_uid ? setresuid(65534, 65534, 65534) : kvt_drop_cap(CAP_NET_ADMIN))
		return 11;
	if (kvnl_open(&nl))
		return 12;
	if (t_device(nl, &d))
		return 13;
	if (t_watermarks(nl, 8 * KVT_MIB, 4 * KVT_MIB) != -EPERM)
		return 14;
	if (t_quota(nl, getppid(), KVT_MIB) != -EPERM)
		return 15;
	if (t_dump(nl, KVACCEL_CMD_CLIENT_GET, l))
		return 16;
	for (i = 0; i < l->n; i++)
		seen_client |= l->o[i].id == parent_client;
	if (t_dump(nl, KVACCEL_CMD_REGION_GET, l))
		return 17;
	for (i = 0; i < l->n; i++)
		seen_region |= l->o[i].region_id == parent_region;
	/* Same uid: its own; another uid: not the parent's. */
	if (seen_client == other_uid || seen_region == other_uid)
		return 18;
	kvnl_close(nl);
	/* The events group is for admins only. */
	if (kvnl_open(&nl) || kvnl_subscribe(nl) != -EPERM)
		return 19;
	kvnl_close(nl);
	free(l);
	return 0;
}

TEST_F(nl, unprivileged_callers)
{
	uint64_t client = 0, region;
	uint32_t h;
	int i, other, status;
	pid_t pid;

	ASSERT_EQ(0, kvt_region_create(self->fd, KVT_MIB, 4096, &h));
	region = region_id(self->fd, h);
	ASSERT_EQ(0, t_dump(self->nl, KVACCEL_CMD_CLIENT_GET, &self->l));
	for (i = 0; i < self->l.n; i++)
		if (self->l.o[i].pid == (uint32_t)getpid())
			client = self->l.o[i].id;
	ASSERT_NE(0, client);

	for (other = 0; other < 2; other++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(unprivileged_child(client, region, other));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("other uid %d: step %d failed",
							 other, WEXITSTATUS(status));
	}
}

TEST_F(nl, events_follow_objects)
{
	struct kvnl *ev;
	struct nl_obj *o;
	uint64_t id, client;
	uint32_t h;
	int fd2;

	ASSERT_EQ(0, kvnl_open(&ev));
	ASSERT_EQ(0, kvnl_subscribe(ev));
	self->l.n = 0;

	fd2 = kvt_open();
	ASSERT_LE(0, fd2);
	o = t_wait_for(ev, &self->l, KVACCEL_CMD_CLIENT_OPEN_NTF, 0, 20000);
	ASSERT_NE(NULL, o);
	client = o->id;
	EXPECT_NE(0, client);
	EXPECT_EQ(0, o->uid);

	ASSERT_EQ(0, kvt_region_create(fd2, 2 * KVT_MIB, 64 * 1024, &h));
	id = region_id(fd2, h);
	o = t_wait_for(ev, &self->l, KVACCEL_CMD_REGION_CREATE_NTF, id, 20000);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(2 * KVT_MIB, o->size);
	EXPECT_EQ(64 * 1024, o->block_size);

	ASSERT_EQ(0, kvt_close_handle(fd2, h));
	o = t_wait_for(ev, &self->l, KVACCEL_CMD_REGION_DESTROY_NTF, id, 20000);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(2 * KVT_MIB, o->size);

	close(fd2);
	o = t_wait_for(ev, &self->l, KVACCEL_CMD_CLIENT_CLOSE_NTF, client, 20000);
	ASSERT_NE(NULL, o);
	kvnl_close(ev);
}

/*
 * Pressure: one event above the high watermark, none until below the low
 * one, one then. Events are queued before the ioctl or close returns, so
 * "none" is exact.
 */
TEST_F(nl, pressure_hysteresis)
{
	uint32_t h[4];
	struct kvnl *ev;
	struct nl_dev d;
	uint64_t base;
	unsigned int i;

	ASSERT_EQ(0, kvnl_open(&ev));
	ASSERT_EQ(0, kvnl_subscribe(ev));
	ASSERT_EQ(0, t_device(self->nl, &d));
	base = d.usage;
	ASSERT_EQ(0, t_watermarks(self->nl, base + 8 * KVT_MIB, base + 4 * KVT_MIB));
	ASSERT_EQ(0, t_events(ev, &self->l, 0));
	EXPECT_EQ(0, count_cmd(&self->l, KVACCEL_CMD_PRESSURE_NTF));

#define STEP(expr, want) do {							\
		ASSERT_EQ(0, (expr));						\
		ASSERT_EQ(0, t_events(ev, &self->l, 0));			\
		if ((want) < 0) {						\
			EXPECT_EQ(0, count_cmd(&self->l, KVACCEL_CMD_PRESSURE_NTF)); \
		} else {							\
			ASSERT_EQ(1, count_cmd(&self->l, KVACCEL_CMD_PRESSURE_NTF)); \
			for (i = 0; i < (unsigned int)self->l.n; i++)		\
				if (self->l.o[i].cmd == KVACCEL_CMD_PRESSURE_NTF) \
					EXPECT_EQ((want), self->l.o[i].pressure); \
		}								\
	} while (0)

	STEP(kvt_region_create(self->fd, 4 * KVT_MIB, 4096, &h[0]), -1);	/* base + 4 */
	STEP(kvt_region_create(self->fd, 6 * KVT_MIB, 4096, &h[1]), 1);	/* + 10 > 8 */
	ASSERT_EQ(0, t_device(self->nl, &d));
	EXPECT_EQ(1, d.pressure);
	STEP(kvt_region_create(self->fd, 2 * KVT_MIB, 4096, &h[2]), -1);
	STEP(kvt_close_handle(self->fd, h[1]), -1);	/* base + 6 */
	STEP(kvt_close_handle(self->fd, h[2]), -1);	/* base + 4: not below */
	STEP(kvt_close_handle(self->fd, h[0]), 0);	/* base + 0 */
	ASSERT_EQ(0, t_device(self->nl, &d));
	EXPECT_EQ(0, d.pressure);
	STEP(kvt_region_create(self->fd, 10 * KVT_MIB, 4096, &h[3]), 1);
	STEP(t_watermarks(self->nl, 0, 0), 0);		/* off ends pressure */
	STEP(kvt_close_handle(self->fd, h[3]), -1);
#undef STEP
	kvnl_close(ev);
}

TEST_F(nl, copy_error_event)
{
	char knob[512];
	struct drm_kvaccel_copy_segment seg;
	struct kvnl *ev;
	struct nl_obj *o;
	uint64_t job;
	uint32_t r;

	snprintf(knob, sizeof(knob), "%s", kvt_debugfs("copy_fail_nth"));
	if (access(knob, W_OK))
		SKIP(return, "no %s", knob);
	ASSERT_EQ(0, kvnl_open(&ev));
	ASSERT_EQ(0, kvnl_subscribe(ev));
	ASSERT_EQ(0, kvt_region_create(self->fd, KVT_MIB, 4096, &r));
	seg = kvt_seg(r, 0, r, 512 * 1024, 4096);
	ASSERT_EQ(0, kvt_write_file(knob, "1"));
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, 0, &job));
	self->l.n = 0;
	o = t_wait_for(ev, &self->l, KVACCEL_CMD_COPY_ERROR_NTF, job, 20000);
	kvt_write_file(knob, "0");
	ASSERT_NE(NULL, o);
	EXPECT_EQ(-EIO, o->error);
	EXPECT_EQ(job, o->job_id);
	kvnl_close(ev);
}

/*
 * Children in network namespaces of their own. Exit codes: 0 ok, 77 the
 * kernel cannot make such a namespace (SKIP), else the step that failed.
 */
static int root_netns_child(uint64_t parent_client)
{
	struct nl_list *l = calloc(1, sizeof(*l));
	struct kvnl *nl, *ev;
	struct nl_dev d;
	uint64_t id;
	uint32_t h;
	int i, fd, seen = 0;

	if (!l)
		return 10;
	if (unshare(CLONE_NEWNET))
		return errno == EINVAL || errno == ENOSYS ? 77 : 11;
	/* The family resolves here, and answers as in the initial namespace. */
	if (kvnl_open(&nl) || t_device(nl, &d))
		return 12;
	if (t_dump(nl, KVACCEL_CMD_CLIENT_GET, l))
		return 13;
	for (i = 0; i < l->n; i++)
		seen |= l->o[i].id == parent_client;
	if (!seen)
		return 14;	/* an admin sees every client, from any namespace */
	/* A namespace owned by the initial user namespace hears the events. */
	if (kvnl_open(&ev) || kvnl_subscribe(ev))
		return 15;
	fd = kvt_open();
	if (fd < 0 || kvt_region_create(fd, KVT_MIB, 4096, &h))
		return 16;
	id = region_id(fd, h);
	l->n = 0;
	if (!t_wait_for(ev, l, KVACCEL_CMD_REGION_CREATE_NTF, id, 20000))
		return 17;
	close(fd);
	kvnl_close(ev);
	kvnl_close(nl);
	free(l);
	return 0;
}

/* Another uid in a user and network namespace of its own; @go, @done: pipes. */
static int user_netns_child(uint64_t parent_client, int go, int done)
{
	struct nl_list *l = calloc(1, sizeof(*l));
	struct kvnl *nl, *ev;
	struct nl_dev d;
	char c = 0;
	int i, ret;

	if (!l)
		return 10;
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return 11;
	/* Refused where unprivileged user namespaces are off: nothing to test. */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET))
		return 77;
	if (kvnl_open(&nl) || t_device(nl, &d))
		return 12;
	/* Full capabilities over its namespace give no admin rights here. */
	if (t_watermarks(nl, 8 * KVT_MIB, 4 * KVT_MIB) != -EPERM)
		return 13;
	if (t_quota(nl, getppid(), KVT_MIB) != -EPERM)
		return 14;
	if (t_dump(nl, KVACCEL_CMD_CLIENT_GET, l))
		return 15;
	for (i = 0; i < l->n; i++)
		if (l->o[i].id == parent_client)
			return 16;
	/*
	 * Genetlink lets it join the group (it has CAP_NET_ADMIN over its
	 * namespace); if so, nothing may arrive.
	 */
	if (kvnl_open(&ev))
		return 17;
	ret = kvnl_subscribe(ev);
	if (ret && ret != -EPERM)
		return 18;
	if (write(go, &c, 1) != 1 || read(done, &c, 1) != 1)
		return 19;
	if (!ret) {
		l->n = 0;
		if (t_events(ev, l, 500))
			return 20;
		if (l->n)
			return 21;	/* an event leaked into the namespace */
	}
	kvnl_close(ev);
	kvnl_close(nl);
	free(l);
	return 0;
}

static uint64_t own_client(struct kvnl *nl, struct nl_list *l)
{
	int i;

	if (t_dump(nl, KVACCEL_CMD_CLIENT_GET, l))
		return 0;
	for (i = 0; i < l->n; i++)
		if (l->o[i].pid == (uint32_t)getpid())
			return l->o[i].id;
	return 0;
}

TEST_F(nl, root_network_namespace)
{
	uint64_t client = own_client(self->nl, &self->l);
	int status;
	pid_t pid;

	ASSERT_NE(0, client);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(root_netns_child(client));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		SKIP(return, "no network namespaces in this kernel");
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("step %d failed", WEXITSTATUS(status));
}

TEST_F(nl, user_network_namespace)
{
	uint64_t client = own_client(self->nl, &self->l), id;
	int go[2], done[2], status;
	struct kvnl *ev;
	uint32_t h;
	pid_t pid;
	char c;

	ASSERT_NE(0, client);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(0, kvnl_open(&ev));
	ASSERT_EQ(0, kvnl_subscribe(ev));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(user_netns_child(client, go[1], done[0]));
	close(go[1]);
	close(done[0]);
	if (read(go[0], &c, 1) == 1) {
		/* An event the initial namespace hears while the child listens. */
		ASSERT_EQ(0, kvt_region_create(self->fd, KVT_MIB, 4096, &h));
		id = region_id(self->fd, h);
		self->l.n = 0;
		EXPECT_NE(NULL, t_wait_for(ev, &self->l, KVACCEL_CMD_REGION_CREATE_NTF, id, 20000));
		ASSERT_EQ(0, kvt_close_handle(self->fd, h));
		ASSERT_EQ(1, write(done[1], &c, 1));
	}
	close(done[1]);
	close(go[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kvnl_close(ev);
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		SKIP(return, "no unprivileged user and network namespaces here");
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("step %d failed", WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
