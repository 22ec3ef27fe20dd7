// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - the generic netlink family "kvaccel" (uapi/kvaccel_netlink.h,
 * Documentation/netlink.rst): the device, client and region dumps, the
 * admin operations, and the events multicast group.
 *
 * Hand-written ops (the split-ops API of generated families is absent on
 * 6.1). The family runs with parallel_ops: every handler takes the
 * device's own locks.
 *
 * Network namespaces: the family answers in every namespace (netnsok), so
 * that kvacceld can run in a container's namespace, but a namespace changes
 * nothing about rights: admin operations and the admin view of dumps need
 * CAP_NET_ADMIN in the initial user namespace (GENL_ADMIN_PERM and
 * netlink_capable()), wherever the caller's socket lives. Events go only to
 * namespaces owned by the initial user namespace (kvaccel_event_multicast()):
 * genetlink lets a group be joined by whoever has CAP_NET_ADMIN over the
 * socket's namespace, which an unprivileged user has over a namespace it
 * created with its own user namespace.
 *
 * Dumps resume by id: clients and regions are listed in the order of
 * their ids, and cb->args[KVACCEL_DUMP_NEXT] holds the next id to send.
 * Who may see what is decided once, when the dump starts, in the caller's
 * context.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/user_namespace.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netlink.h>

#include <drm/drm_drv.h>

#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"
#include "../uapi/kvaccel_netlink.h"

enum kvaccel_dump_arg {
	KVACCEL_DUMP_NEXT,	/* next id to send */
	KVACCEL_DUMP_ADMIN,	/* caller may see everything */
	KVACCEL_DUMP_UID,	/* else: the caller's effective uid */
};

enum kvaccel_mcgrp {
	KVACCEL_MCGRP_EVENTS,
};

/*
 * The device the family serves, NULL while none is bound (the platform
 * device can be unbound and bound again; the family lives with the module).
 * Every operation takes a reference under the lock and drops it when done,
 * so a device being removed stays alive until its last operation ends.
 */
static DEFINE_MUTEX(kvaccel_nl_dev_lock);
static struct kvaccel_device *kvaccel_nl_kdev;

static struct kvaccel_device *kvaccel_nl_get(void)
{
	struct kvaccel_device *kdev;

	mutex_lock(&kvaccel_nl_dev_lock);
	kdev = kvaccel_nl_kdev;
	if (kdev)
		drm_dev_get(&kdev->drm);
	mutex_unlock(&kvaccel_nl_dev_lock);
	return kdev;
}

static struct genl_family kvaccel_nl_family;

static const struct nla_policy kvaccel_nl_policy[KVACCEL_A_MAX + 1] = {
	[KVACCEL_A_LIMIT] = { .type = NLA_U64 },
	[KVACCEL_A_DEFAULT_QUOTA] = { .type = NLA_U64 },
	[KVACCEL_A_HIGH_WM] = { .type = NLA_U64 },
	[KVACCEL_A_LOW_WM] = { .type = NLA_U64 },
	[KVACCEL_A_PID] = NLA_POLICY_MIN(NLA_U32, 1),
	[KVACCEL_A_QUOTA] = { .type = NLA_U64 },
};

static int kvaccel_put_u64(struct sk_buff *skb, int attr, u64 value)
{
	return nla_put_u64_64bit(skb, attr, value, KVACCEL_A_PAD);
}

static int kvaccel_fill_device(struct sk_buff *skb, struct kvaccel_device *kdev)
{
	u64 high, low;
	bool pressure;
	u32 clients;

	mutex_lock(&kdev->pressure_lock);
	high = kdev->high_wm;
	low = kdev->low_wm;
	pressure = kdev->pressure;
	mutex_unlock(&kdev->pressure_lock);
	mutex_lock(&kdev->clients_lock);
	clients = kdev->nr_clients;
	mutex_unlock(&kdev->clients_lock);

	if (nla_put_u32(skb, KVACCEL_A_ABI_VERSION, KVACCEL_ABI_VERSION) ||
	    kvaccel_put_u64(skb, KVACCEL_A_LIMIT, kvaccel_device_limit()) ||
	    kvaccel_put_u64(skb, KVACCEL_A_USAGE, kvaccel_acct_device_usage(kdev)) ||
	    kvaccel_put_u64(skb, KVACCEL_A_DEFAULT_QUOTA, kvaccel_default_quota()) ||
	    kvaccel_put_u64(skb, KVACCEL_A_HIGH_WM, high) ||
	    kvaccel_put_u64(skb, KVACCEL_A_LOW_WM, low) ||
	    nla_put_u8(skb, KVACCEL_A_PRESSURE, pressure) ||
	    kvaccel_put_u64(skb, KVACCEL_A_PAGES_HELD,
			    atomic_long_read(&kdev->pages_held)) ||
	    nla_put_u32(skb, KVACCEL_A_REGIONS, atomic_read(&kdev->nr_regions)) ||
	    nla_put_u32(skb, KVACCEL_A_CLIENTS, clients) ||
	    nla_put_u32(skb, KVACCEL_A_COPY_WORKERS, kdev->copy_workers) ||
	    kvaccel_put_u64(skb, KVACCEL_A_COPY_JOBS, atomic64_read(&kdev->copy_jobs)) ||
	    kvaccel_put_u64(skb, KVACCEL_A_COPY_ERRORS,
			    atomic64_read(&kdev->copy_errors)))
		return -EMSGSIZE;
	return 0;
}

static int kvaccel_nl_device_get_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				     struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put(msg, info->snd_portid, info->snd_seq, &kvaccel_nl_family,
			  0, KVACCEL_CMD_DEVICE_GET);
	if (!hdr) {
		ret = -EMSGSIZE;
		goto err_free;
	}
	ret = kvaccel_fill_device(msg, kdev);
	if (ret)
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return ret;
}

/* Remember, in the caller's context, what the dump may show it. */
static int kvaccel_nl_dump_start(struct netlink_callback *cb)
{
	cb->args[KVACCEL_DUMP_NEXT] = 0;
	cb->args[KVACCEL_DUMP_ADMIN] = netlink_capable(cb->skb, CAP_NET_ADMIN);
	cb->args[KVACCEL_DUMP_UID] = from_kuid_munged(&init_user_ns, current_euid());
	return 0;
}

static bool kvaccel_dump_may_see(struct netlink_callback *cb, kuid_t uid)
{
	return cb->args[KVACCEL_DUMP_ADMIN] ||
	       from_kuid_munged(&init_user_ns, uid) == cb->args[KVACCEL_DUMP_UID];
}

/*
 * What a part of a dump returns: a message that did not fit ends this part
 * (the next resumes at its id), unless the part is empty; an empty part
 * ends the dump.
 */
static int kvaccel_dump_part_end(struct sk_buff *skb, int ret)
{
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ? ret : skb->len;
}

static void *kvaccel_dump_put(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd)
{
	return genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			   &kvaccel_nl_family, NLM_F_MULTI, cmd);
}

static int kvaccel_fill_client(struct sk_buff *skb, struct kvaccel_client *client)
{
	struct kvaccel_proc *proc = client->proc;
	u64 usage, quota;
	u32 regions;

	kvaccel_proc_snapshot(proc, &usage, &quota, &regions);

	if (kvaccel_put_u64(skb, KVACCEL_A_CLIENT_ID, client->id) ||
	    nla_put_u32(skb, KVACCEL_A_PID, pid_vnr(proc->tgid)) ||
	    nla_put_u32(skb, KVACCEL_A_UID, from_kuid_munged(&init_user_ns, client->uid)) ||
	    nla_put_string(skb, KVACCEL_A_COMM, proc->comm) ||
	    kvaccel_put_u64(skb, KVACCEL_A_USAGE, usage) ||
	    kvaccel_put_u64(skb, KVACCEL_A_QUOTA, quota) ||
	    nla_put_u32(skb, KVACCEL_A_REGIONS, regions) ||
	    nla_put_u32(skb, KVACCEL_A_REGION_HANDLES,
			atomic_read(&client->region_handles)) ||
	    nla_put_u32(skb, KVACCEL_A_SPACE_HANDLES,
			atomic_read(&client->space_handles)) ||
	    nla_put_u32(skb, KVACCEL_A_IMPORT_HANDLES,
			atomic_read(&client->import_handles)) ||
	    nla_put_u32(skb, KVACCEL_A_COPY_INFLIGHT,
			atomic_read(&proc->copy_inflight)))
		return -EMSGSIZE;
	return 0;
}

static int kvaccel_nl_client_dump_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				      struct netlink_callback *cb)
{
	struct kvaccel_client *client;
	int ret = 0;

	mutex_lock(&kdev->clients_lock);
	list_for_each_entry(client, &kdev->clients, node) {
		void *hdr;

		if (client->id < cb->args[KVACCEL_DUMP_NEXT] ||
		    !kvaccel_dump_may_see(cb, client->uid))
			continue;
		hdr = kvaccel_dump_put(skb, cb, KVACCEL_CMD_CLIENT_GET);
		if (!hdr) {
			ret = -EMSGSIZE;
			break;
		}
		ret = kvaccel_fill_client(skb, client);
		if (ret) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[KVACCEL_DUMP_NEXT] = client->id + 1;
	}
	mutex_unlock(&kdev->clients_lock);

	return kvaccel_dump_part_end(skb, ret);
}

static int kvaccel_fill_region(struct sk_buff *skb, struct kvaccel_region *region)
{
	struct kvaccel_proc *owner = region->owner;

	if (kvaccel_put_u64(skb, KVACCEL_A_REGION_ID, region->id) ||
	    nla_put_u32(skb, KVACCEL_A_PID, pid_vnr(owner->tgid)) ||
	    nla_put_u32(skb, KVACCEL_A_UID, from_kuid_munged(&init_user_ns, region->uid)) ||
	    nla_put_string(skb, KVACCEL_A_COMM, owner->comm) ||
	    kvaccel_put_u64(skb, KVACCEL_A_SIZE, region->base.size) ||
	    kvaccel_put_u64(skb, KVACCEL_A_BLOCK_SIZE, 1ULL << region->block_shift) ||
	    nla_put_s32(skb, KVACCEL_A_NODE, region->nid) ||
	    nla_put_u32(skb, KVACCEL_A_BOUND_SLOTS, atomic_read(&region->bound)) ||
	    /* Racy by nature: a snapshot for display. */
	    nla_put_u8(skb, KVACCEL_A_EXPORTED, !!READ_ONCE(region->base.dma_buf)))
		return -EMSGSIZE;
	return 0;
}

static int kvaccel_nl_region_dump_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				      struct netlink_callback *cb)
{
	struct kvaccel_region *region;
	int ret = 0;

	mutex_lock(&kdev->regions_lock);
	list_for_each_entry(region, &kdev->regions, node) {
		void *hdr;

		if (region->id < cb->args[KVACCEL_DUMP_NEXT] ||
		    !kvaccel_dump_may_see(cb, region->uid))
			continue;
		hdr = kvaccel_dump_put(skb, cb, KVACCEL_CMD_REGION_GET);
		if (!hdr) {
			ret = -EMSGSIZE;
			break;
		}
		ret = kvaccel_fill_region(skb, region);
		if (ret) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[KVACCEL_DUMP_NEXT] = region->id + 1;
	}
	mutex_unlock(&kdev->regions_lock);

	return kvaccel_dump_part_end(skb, ret);
}

/* A byte count that must be a whole number of MiB (a module parameter). */
static int kvaccel_nl_get_mib(struct genl_info *info, int attr, u64 *bytes)
{
	*bytes = nla_get_u64(info->attrs[attr]);
	if (*bytes & ((1ULL << 20) - 1)) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[attr],
				    "must be a multiple of 1 MiB");
		return -EINVAL;
	}
	if ((*bytes >> 20) > ULONG_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[attr], "too large");
		return -EINVAL;
	}
	return 0;
}

static int kvaccel_nl_device_set_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				     struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	u64 limit = 0, quota = 0, high = 0, low = 0;
	bool set_wm = attrs[KVACCEL_A_HIGH_WM] || attrs[KVACCEL_A_LOW_WM];
	int ret;

	if (!attrs[KVACCEL_A_LIMIT] && !attrs[KVACCEL_A_DEFAULT_QUOTA] && !set_wm) {
		GENL_SET_ERR_MSG(info, "nothing to set");
		return -EINVAL;
	}
	if (attrs[KVACCEL_A_LIMIT]) {
		ret = kvaccel_nl_get_mib(info, KVACCEL_A_LIMIT, &limit);
		if (ret)
			return ret;
	}
	if (attrs[KVACCEL_A_DEFAULT_QUOTA]) {
		ret = kvaccel_nl_get_mib(info, KVACCEL_A_DEFAULT_QUOTA, &quota);
		if (ret)
			return ret;
	}

	/* The watermarks are checked and set together; the rest cannot fail. */
	if (set_wm) {
		if (attrs[KVACCEL_A_HIGH_WM])
			high = nla_get_u64(attrs[KVACCEL_A_HIGH_WM]);
		if (attrs[KVACCEL_A_LOW_WM])
			low = nla_get_u64(attrs[KVACCEL_A_LOW_WM]);
		ret = kvaccel_pressure_set(kdev, attrs[KVACCEL_A_HIGH_WM] ? &high : NULL,
					   attrs[KVACCEL_A_LOW_WM] ? &low : NULL);
		if (ret) {
			GENL_SET_ERR_MSG(info, "watermarks: both 0 (off) or 0 < low <= high");
			return ret;
		}
	}
	if (attrs[KVACCEL_A_LIMIT])
		kvaccel_set_device_limit(limit);
	if (attrs[KVACCEL_A_DEFAULT_QUOTA])
		kvaccel_set_default_quota(quota);
	return 0;
}

static int kvaccel_nl_quota_set_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				    struct genl_info *info)
{
	struct pid *tgid;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, KVACCEL_A_PID) ||
	    GENL_REQ_ATTR_CHECK(info, KVACCEL_A_QUOTA))
		return -EINVAL;

	tgid = find_get_pid(nla_get_u32(info->attrs[KVACCEL_A_PID]));
	ret = tgid ? kvaccel_acct_set_quota(kdev, tgid,
					    nla_get_u64(info->attrs[KVACCEL_A_QUOTA])) :
		     -ESRCH;
	put_pid(tgid);
	if (ret)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVACCEL_A_PID],
				    "no process with that pid uses the device");
	return ret;
}

static int kvaccel_fill_import(struct sk_buff *skb, struct kvaccel_import *import)
{
	if (kvaccel_put_u64(skb, KVACCEL_A_IMPORT_ID, import->id) ||
	    nla_put_u32(skb, KVACCEL_A_PID, pid_vnr(import->tgid)) ||
	    nla_put_u32(skb, KVACCEL_A_UID, from_kuid_munged(&init_user_ns, import->uid)) ||
	    nla_put_string(skb, KVACCEL_A_COMM, import->comm) ||
	    kvaccel_put_u64(skb, KVACCEL_A_SIZE, import->base.size) ||
	    nla_put_u8(skb, KVACCEL_A_HELD, !import->cpu_access) ||
	    nla_put_u8(skb, KVACCEL_A_READ_ONLY, import->read_only))
		return -EMSGSIZE;
	return 0;
}

static int kvaccel_nl_import_dump_dev(struct kvaccel_device *kdev, struct sk_buff *skb,
				      struct netlink_callback *cb)
{
	struct kvaccel_import *import;
	int ret = 0;

	mutex_lock(&kdev->regions_lock);
	list_for_each_entry(import, &kdev->imports, node) {
		void *hdr;

		if (import->id < cb->args[KVACCEL_DUMP_NEXT] ||
		    !kvaccel_dump_may_see(cb, import->uid))
			continue;
		hdr = kvaccel_dump_put(skb, cb, KVACCEL_CMD_IMPORT_GET);
		if (!hdr) {
			ret = -EMSGSIZE;
			break;
		}
		ret = kvaccel_fill_import(skb, import);
		if (ret) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[KVACCEL_DUMP_NEXT] = import->id + 1;
	}
	mutex_unlock(&kdev->regions_lock);

	return kvaccel_dump_part_end(skb, ret);
}

/* Run a do operation on the bound device; -ENODEV while none is. */
static int kvaccel_nl_do(int (*op)(struct kvaccel_device *kdev, struct sk_buff *skb,
				   struct genl_info *info),
			 struct sk_buff *skb, struct genl_info *info)
{
	struct kvaccel_device *kdev = kvaccel_nl_get();
	int ret;

	if (!kdev)
		return -ENODEV;
	ret = op(kdev, skb, info);
	drm_dev_put(&kdev->drm);
	return ret;
}

/* One part of a dump of the bound device; -ENODEV while none is. */
static int kvaccel_nl_dump(int (*dump)(struct kvaccel_device *kdev, struct sk_buff *skb,
				       struct netlink_callback *cb),
			   struct sk_buff *skb, struct netlink_callback *cb)
{
	struct kvaccel_device *kdev = kvaccel_nl_get();
	int ret;

	if (!kdev)
		return -ENODEV;
	ret = dump(kdev, skb, cb);
	drm_dev_put(&kdev->drm);
	return ret;
}

static int kvaccel_nl_device_get(struct sk_buff *skb, struct genl_info *info)
{
	return kvaccel_nl_do(kvaccel_nl_device_get_dev, skb, info);
}

static int kvaccel_nl_device_set(struct sk_buff *skb, struct genl_info *info)
{
	return kvaccel_nl_do(kvaccel_nl_device_set_dev, skb, info);
}

static int kvaccel_nl_quota_set(struct sk_buff *skb, struct genl_info *info)
{
	return kvaccel_nl_do(kvaccel_nl_quota_set_dev, skb, info);
}

static int kvaccel_nl_client_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	return kvaccel_nl_dump(kvaccel_nl_client_dump_dev, skb, cb);
}

static int kvaccel_nl_region_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	return kvaccel_nl_dump(kvaccel_nl_region_dump_dev, skb, cb);
}

static int kvaccel_nl_import_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	return kvaccel_nl_dump(kvaccel_nl_import_dump_dev, skb, cb);
}

static const struct genl_ops kvaccel_nl_ops[] = {
	{
		.cmd = KVACCEL_CMD_DEVICE_GET,
		.doit = kvaccel_nl_device_get,
	},
	{
		.cmd = KVACCEL_CMD_CLIENT_GET,
		.start = kvaccel_nl_dump_start,
		.dumpit = kvaccel_nl_client_dump,
	},
	{
		.cmd = KVACCEL_CMD_REGION_GET,
		.start = kvaccel_nl_dump_start,
		.dumpit = kvaccel_nl_region_dump,
	},
	{
		.cmd = KVACCEL_CMD_DEVICE_SET,
		.doit = kvaccel_nl_device_set,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = KVACCEL_CMD_QUOTA_SET,
		.doit = kvaccel_nl_quota_set,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = KVACCEL_CMD_IMPORT_GET,
		.start = kvaccel_nl_dump_start,
		.dumpit = kvaccel_nl_import_dump,
	},
};

static const struct genl_multicast_group kvaccel_nl_mcgrps[] = {
	[KVACCEL_MCGRP_EVENTS] = {
		.name = KVACCEL_GENL_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
};

static struct genl_family kvaccel_nl_family = {
	.name = KVACCEL_GENL_NAME,
	.version = KVACCEL_GENL_VERSION,
	.maxattr = KVACCEL_A_MAX,
	.policy = kvaccel_nl_policy,
	.netnsok = true,
	.parallel_ops = true,
	.module = THIS_MODULE,
	.ops = kvaccel_nl_ops,
	.n_ops = ARRAY_SIZE(kvaccel_nl_ops),
	.mcgrps = kvaccel_nl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(kvaccel_nl_mcgrps),
};

/* May the events of the device go to @net's listeners? */
static bool kvaccel_event_net_ok(const struct net *net)
{
	return net->user_ns == &init_user_ns;
}

/*
 * Does anyone listen to the events, in a namespace that may hear them?
 * One walk over the namespaces per event (events are per client, region,
 * pressure change or failed job, not per page).
 */
static bool kvaccel_event_listened(void)
{
	struct net *net;
	bool ret = false;

	rcu_read_lock();
	for_each_net_rcu(net) {
		if (kvaccel_event_net_ok(net) &&
		    genl_has_listeners(&kvaccel_nl_family, net, KVACCEL_MCGRP_EVENTS)) {
			ret = true;
			break;
		}
	}
	rcu_read_unlock();
	return ret;
}

/* Start an event, or return NULL if nobody listens or memory is short. */
static struct sk_buff *kvaccel_event_new(u8 cmd, void **hdr)
{
	struct sk_buff *skb;

	if (!kvaccel_event_listened())
		return NULL;
	skb = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &kvaccel_nl_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

/*
 * Send a finished event to the listeners of every namespace that may hear
 * it (kvaccel_event_net_ok()), a clone per namespace but the last, and
 * consume @skb. Under RCU: the clones are atomic allocations, and one that
 * fails loses that namespace's copy of this event only (as a full socket
 * buffer would).
 */
static void kvaccel_event_multicast(struct sk_buff *skb)
{
	struct net *net, *prev = NULL;
	struct sk_buff *copy;

	rcu_read_lock();
	for_each_net_rcu(net) {
		if (!kvaccel_event_net_ok(net) ||
		    !genl_has_listeners(&kvaccel_nl_family, net, KVACCEL_MCGRP_EVENTS))
			continue;
		if (prev) {
			copy = skb_clone(skb, GFP_ATOMIC);
			if (copy)
				genlmsg_multicast_netns(&kvaccel_nl_family, prev, copy, 0,
							KVACCEL_MCGRP_EVENTS, GFP_ATOMIC);
		}
		prev = net;
	}
	if (prev)
		genlmsg_multicast_netns(&kvaccel_nl_family, prev, skb, 0,
					KVACCEL_MCGRP_EVENTS, GFP_ATOMIC);
	else
		nlmsg_free(skb);
	rcu_read_unlock();
}

static void kvaccel_event_send(struct sk_buff *skb, void *hdr, int ret)
{
	if (ret) {
		nlmsg_free(skb);
		return;
	}
	genlmsg_end(skb, hdr);
	kvaccel_event_multicast(skb);
}

/**
 * kvaccel_notify_client - event: a client opened or closed.
 * @client: the client.
 * @open: opened, else closed.
 *
 * Like every event: process context, no lock that reclaim could need held;
 * lost, not retried, if memory is short (listeners see a gap in nothing
 * but the event stream; the dumps stay exact).
 */
void kvaccel_notify_client(struct kvaccel_client *client, bool open)
{
	struct kvaccel_proc *proc = client->proc;
	struct sk_buff *skb;
	void *hdr;

	skb = kvaccel_event_new(open ? KVACCEL_CMD_CLIENT_OPEN_NTF :
				KVACCEL_CMD_CLIENT_CLOSE_NTF, &hdr);
	if (!skb)
		return;
	kvaccel_event_send(skb, hdr,
			   kvaccel_put_u64(skb, KVACCEL_A_CLIENT_ID, client->id) ||
			   nla_put_u32(skb, KVACCEL_A_PID, pid_nr(proc->tgid)) ||
			   nla_put_u32(skb, KVACCEL_A_UID,
				       from_kuid_munged(&init_user_ns, client->uid)) ||
			   nla_put_string(skb, KVACCEL_A_COMM, proc->comm) ||
			   kvaccel_put_u64(skb, KVACCEL_A_USAGE, READ_ONCE(proc->usage)));
}

/**
 * kvaccel_notify_region - event: a region was created or destroyed.
 * @region: the region (published).
 * @create: created, else destroyed.
 */
void kvaccel_notify_region(struct kvaccel_region *region, bool create)
{
	struct sk_buff *skb;
	void *hdr;

	skb = kvaccel_event_new(create ? KVACCEL_CMD_REGION_CREATE_NTF :
				KVACCEL_CMD_REGION_DESTROY_NTF, &hdr);
	if (!skb)
		return;
	kvaccel_event_send(skb, hdr,
			   kvaccel_put_u64(skb, KVACCEL_A_REGION_ID, region->id) ||
			   nla_put_u32(skb, KVACCEL_A_PID, pid_nr(region->owner->tgid)) ||
			   nla_put_u32(skb, KVACCEL_A_UID,
				       from_kuid_munged(&init_user_ns, region->uid)) ||
			   kvaccel_put_u64(skb, KVACCEL_A_SIZE, region->base.size) ||
			   kvaccel_put_u64(skb, KVACCEL_A_BLOCK_SIZE,
					   1ULL << region->block_shift) ||
			   nla_put_s32(skb, KVACCEL_A_NODE, region->nid));
}

/**
 * kvaccel_notify_pressure - event: the pressure state changed.
 * @kdev: the device.
 * @pressure: under pressure now.
 * @usage: the usage that decided it.
 * @high: the high watermark.
 * @low: the low watermark.
 */
void kvaccel_notify_pressure(struct kvaccel_device *kdev, bool pressure,
			     u64 usage, u64 high, u64 low)
{
	struct sk_buff *skb;
	void *hdr;

	skb = kvaccel_event_new(KVACCEL_CMD_PRESSURE_NTF, &hdr);
	if (!skb)
		return;
	kvaccel_event_send(skb, hdr,
			   nla_put_u8(skb, KVACCEL_A_PRESSURE, pressure) ||
			   kvaccel_put_u64(skb, KVACCEL_A_USAGE, usage) ||
			   kvaccel_put_u64(skb, KVACCEL_A_LIMIT, kvaccel_device_limit()) ||
			   kvaccel_put_u64(skb, KVACCEL_A_HIGH_WM, high) ||
			   kvaccel_put_u64(skb, KVACCEL_A_LOW_WM, low));
}

/**
 * kvaccel_notify_copy_error - event: a copy job failed.
 * @kdev: the device.
 * @client_id: the client that submitted it.
 * @proc: the process that submitted it.
 * @job_id: the job's id in the client.
 * @error: the negative errno the job's fence carries.
 */
void kvaccel_notify_copy_error(struct kvaccel_device *kdev, u64 client_id,
			       struct kvaccel_proc *proc, u64 job_id, int error)
{
	struct sk_buff *skb;
	void *hdr;

	skb = kvaccel_event_new(KVACCEL_CMD_COPY_ERROR_NTF, &hdr);
	if (!skb)
		return;
	kvaccel_event_send(skb, hdr,
			   kvaccel_put_u64(skb, KVACCEL_A_CLIENT_ID, client_id) ||
			   nla_put_u32(skb, KVACCEL_A_PID, pid_nr(proc->tgid)) ||
			   nla_put_string(skb, KVACCEL_A_COMM, proc->comm) ||
			   kvaccel_put_u64(skb, KVACCEL_A_JOB_ID, job_id) ||
			   nla_put_s32(skb, KVACCEL_A_ERROR, error));
}

/**
 * kvaccel_netlink_init - register the family (module load).
 *
 * Return: 0 or the errno of genl_register_family().
 */
int kvaccel_netlink_init(void)
{
	return genl_register_family(&kvaccel_nl_family);
}

/**
 * kvaccel_netlink_fini - unregister the family (module unload). No event
 * can follow: every client and region is gone when the module unloads.
 */
void kvaccel_netlink_fini(void)
{
	genl_unregister_family(&kvaccel_nl_family);
}

/**
 * kvaccel_netlink_attach - serve a device (bound); or none (@kdev NULL,
 *	being removed: operations then fail with -ENODEV).
 * @kdev: the device or NULL.
 */
void kvaccel_netlink_attach(struct kvaccel_device *kdev)
{
	mutex_lock(&kvaccel_nl_dev_lock);
	kvaccel_nl_kdev = kdev;
	mutex_unlock(&kvaccel_nl_dev_lock);
}
