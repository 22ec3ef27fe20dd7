// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - memory accounting: the device limit and per-process quotas.
 *
 * Quotas belong to processes (thread groups), not to open files, so opening
 * the device again does not bypass them. A region is charged to the process
 * that created it until its last page is freed, even after that process has
 * exited (the region may live on in an exported dma-buf); the process's
 * accounting entry lives as long as anything is charged to it.
 *
 * Pressure: with watermarks set, the device is under pressure from the
 * moment usage rises above the high watermark until it falls below the low
 * one; each change of that state is one event (kvaccel_pressure_update()).
 */
#include <linux/cred.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "kvaccel_drv.h"

void kvaccel_acct_init(struct kvaccel_device *kdev)
{
	mutex_init(&kdev->acct_lock);
	INIT_LIST_HEAD(&kdev->procs);
	INIT_LIST_HEAD(&kdev->users);
	kdev->usage = 0;
	mutex_init(&kdev->pressure_lock);
	kdev->high_wm = 0;
	kdev->low_wm = 0;
	kdev->pressure = false;
}

static struct kvaccel_proc *kvaccel_proc_find_locked(struct kvaccel_device *kdev,
						     struct pid *tgid)
{
	struct kvaccel_proc *proc;

	lockdep_assert_held(&kdev->acct_lock);

	list_for_each_entry(proc, &kdev->procs, node)
		if (proc->tgid == tgid)
			return proc;
	return NULL;
}

/**
 * kvaccel_proc_get - find or create the accounting entry of a process.
 * @kdev: the device.
 * @tgid: the process's thread-group pid.
 *
 * Return: the entry with a reference held, or NULL if out of memory.
 */
struct kvaccel_proc *kvaccel_proc_get(struct kvaccel_device *kdev,
				      struct pid *tgid)
{
	struct kvaccel_proc *proc, *new;

	mutex_lock(&kdev->acct_lock);
	proc = kvaccel_proc_find_locked(kdev, tgid);
	if (proc)
		refcount_inc(&proc->ref);
	mutex_unlock(&kdev->acct_lock);
	if (proc)
		return proc;

	/* Allocate unlocked, then insert unless another thread was faster. */
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return NULL;

	mutex_lock(&kdev->acct_lock);
	proc = kvaccel_proc_find_locked(kdev, tgid);
	if (proc) {
		refcount_inc(&proc->ref);
	} else {
		proc = new;
		new = NULL;
		proc->kdev = kdev;
		refcount_set(&proc->ref, 1);
		proc->tgid = get_pid(tgid);
		proc->uid = current_euid();
		/* Called by the process itself (kvaccel_client_caller()). */
		get_task_comm(proc->comm, current);
		list_add_tail(&proc->node, &kdev->procs);
	}
	mutex_unlock(&kdev->acct_lock);

	kfree(new);
	return proc;
}

/**
 * kvaccel_client_caller - the accounting entry of the process calling
 * into a client's file.
 * @client: the file.
 *
 * The caller is charged, not the opener: the file may have been inherited
 * or passed from the process that opened it. The common case (the opener
 * itself) takes no lock.
 *
 * Return: the entry with a reference held, or NULL if out of memory.
 */
struct kvaccel_proc *kvaccel_client_caller(struct kvaccel_client *client)
{
	if (client->proc->tgid == task_tgid(current)) {
		refcount_inc(&client->proc->ref);
		return client->proc;
	}
	return kvaccel_proc_get(client->kdev, task_tgid(current));
}

/**
 * kvaccel_proc_put - drop a reference on a process's accounting entry.
 * @proc: the entry; may be NULL.
 *
 * The last reference unlinks the entry under the lock, so a concurrent
 * kvaccel_proc_get() either finds it alive or not at all; any other is
 * dropped without the lock (every copy job drops one).
 */
void kvaccel_proc_put(struct kvaccel_proc *proc)
{
	struct kvaccel_device *kdev;
	bool last;

	if (!proc || refcount_dec_not_one(&proc->ref))
		return;
	kdev = proc->kdev;

	mutex_lock(&kdev->acct_lock);
	last = refcount_dec_and_test(&proc->ref);
	if (last) {
		WARN_ON(proc->usage || proc->nr_regions);
		list_del(&proc->node);
	}
	mutex_unlock(&kdev->acct_lock);

	if (last) {
		put_pid(proc->tgid);
		kfree(proc);
	}
}

static u64 kvaccel_proc_quota_locked(struct kvaccel_proc *proc)
{
	lockdep_assert_held(&proc->kdev->acct_lock);

	return proc->quota ? proc->quota : kvaccel_default_quota();
}

static bool kvaccel_over(u64 used, u64 bytes, u64 cap)
{
	return bytes > cap || used > cap - bytes;
}

/**
 * kvaccel_acct_charge - charge bytes to a process, its user (under the
 * default quota) and the device.
 * @proc: the process.
 * @bytes: the size of the region about to be allocated.
 * @user: Out: the user charged too (a process without a quota of its own,
 *	with a default quota set), or NULL; pass it to kvaccel_acct_uncharge().
 *
 * A process with a quota of its own is bound by it. One under the default
 * quota is bound by it, and so are all such processes of its user
 * together: forking does not multiply what a user may pin.
 * All or nothing: on error no counter has changed.
 *
 * Return: 0, -EDQUOT if the process's or its user's quota would be
 * exceeded, -ENOMEM if the device limit would be (or out of memory).
 */
int kvaccel_acct_charge(struct kvaccel_proc *proc, u64 bytes, struct kvaccel_user **user)
{
	struct kvaccel_user *u = NULL, *idle = NULL, *new;
	struct kvaccel_device *kdev = proc->kdev;
	u64 quota, limit = kvaccel_device_limit();
	int ret = 0;

	*user = NULL;
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	mutex_lock(&kdev->acct_lock);
	quota = kvaccel_proc_quota_locked(proc);
	if (quota && kvaccel_over(proc->usage, bytes, quota)) {
		ret = -EDQUOT;
		goto out_unlock;
	}
	if (!proc->quota && quota) {
		u = kvaccel_user_get_locked(kdev, proc->uid, &new);
		if (kvaccel_over(u->usage, bytes, quota)) {
			ret = -EDQUOT;
			goto out_unlock;
		}
	}
	if (kvaccel_over(kdev->usage, bytes, limit)) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	proc->usage += bytes;
	proc->nr_regions++;
	kdev->usage += bytes;
	if (u) {
		u->usage += bytes;
		u->charges++;
		*user = u;
	}
out_unlock:
	if (ret && u)
		idle = kvaccel_user_idle_locked(u);
	mutex_unlock(&kdev->acct_lock);
	kfree(idle);
	kfree(new);
	if (!ret)
		kvaccel_pressure_update(kdev);
	return ret;
}

/**
 * kvaccel_acct_uncharge - return what kvaccel_acct_charge() took.
 * @proc: the process charged.
 * @bytes: the bytes charged.
 * @user: the user charged with them, or NULL.
 */
void kvaccel_acct_uncharge(struct kvaccel_proc *proc, u64 bytes, struct kvaccel_user *user)
{
	struct kvaccel_device *kdev = proc->kdev;
	struct kvaccel_user *idle = NULL;

	mutex_lock(&kdev->acct_lock);
	if (!WARN_ON(proc->usage < bytes || kdev->usage < bytes ||
		     !proc->nr_regions)) {
		proc->usage -= bytes;
		proc->nr_regions--;
		kdev->usage -= bytes;
	}
	if (user) {
		if (!WARN_ON(user->usage < bytes || !user->charges)) {
			user->usage -= bytes;
			user->charges--;
		}
		idle = kvaccel_user_idle_locked(user);
	}
	mutex_unlock(&kdev->acct_lock);
	kfree(idle);
	kvaccel_pressure_update(kdev);
}

/**
 * kvaccel_acct_read - read a process's usage and effective quota.
 * @kdev: the device.
 * @tgid: the process.
 * @usage: Out: bytes charged to it (0 if it has no entry).
 * @quota: Out: its quota in bytes, 0 for none.
 */
void kvaccel_acct_read(struct kvaccel_device *kdev, struct pid *tgid,
		       u64 *usage, u64 *quota)
{
	struct kvaccel_proc *proc;

	mutex_lock(&kdev->acct_lock);
	proc = kvaccel_proc_find_locked(kdev, tgid);
	*usage = proc ? proc->usage : 0;
	*quota = proc ? kvaccel_proc_quota_locked(proc) : kvaccel_default_quota();
	mutex_unlock(&kdev->acct_lock);
}

/**
 * kvaccel_acct_device_usage - bytes charged on the device.
 * @kdev: the device.
 *
 * Return: the sum of all regions' charges.
 */
u64 kvaccel_acct_device_usage(struct kvaccel_device *kdev)
{
	u64 usage;

	mutex_lock(&kdev->acct_lock);
	usage = kdev->usage;
	mutex_unlock(&kdev->acct_lock);
	return usage;
}

/**
 * kvaccel_proc_snapshot - a process's accounting, read at one moment.
 * @proc: the process.
 * @usage: Out: bytes charged to it.
 * @quota: Out: its effective quota (its own, else the default; 0 for none).
 * @regions: Out: regions it owns.
 */
void kvaccel_proc_snapshot(struct kvaccel_proc *proc, u64 *usage, u64 *quota, u32 *regions)
{
	mutex_lock(&proc->kdev->acct_lock);
	*usage = proc->usage;
	*quota = kvaccel_proc_quota_locked(proc);
	*regions = proc->nr_regions;
	mutex_unlock(&proc->kdev->acct_lock);
}

/**
 * kvaccel_acct_set_quota - set a process's own quota.
 * @kdev: the device.
 * @tgid: the process.
 * @quota: bytes, 0 to follow the default quota.
 *
 * A quota below the process's usage takes nothing away: its next charge
 * fails.
 *
 * Return: 0, or -ESRCH if the process has no accounting entry (it never
 * opened the device and owns no region).
 */
int kvaccel_acct_set_quota(struct kvaccel_device *kdev, struct pid *tgid,
			   u64 quota)
{
	struct kvaccel_proc *proc;

	mutex_lock(&kdev->acct_lock);
	proc = kvaccel_proc_find_locked(kdev, tgid);
	if (proc)
		proc->quota = quota;
	mutex_unlock(&kdev->acct_lock);
	return proc ? 0 : -ESRCH;
}

/**
 * kvaccel_pressure_update - compare usage with the watermarks and send a
 * pressure event if the pressure state changes.
 * @kdev: the device.
 *
 * Called after every change of usage and of the watermarks. The decision
 * and the event are made under pressure_lock, so events alternate strictly
 * (on, off, on, ...) and follow the state in order.
 */
void kvaccel_pressure_update(struct kvaccel_device *kdev)
{
	u64 usage;

	/* Racy peek: whoever changes either field calls us again after. */
	if (!READ_ONCE(kdev->high_wm) && !READ_ONCE(kdev->pressure))
		return;

	mutex_lock(&kdev->pressure_lock);
	usage = kvaccel_acct_device_usage(kdev);
	if (!kdev->pressure && kdev->high_wm && usage > kdev->high_wm) {
		WRITE_ONCE(kdev->pressure, true);
		kvaccel_notify_pressure(kdev, true, usage, kdev->high_wm, kdev->low_wm);
	} else if (kdev->pressure && (!kdev->high_wm || usage < kdev->low_wm)) {
		WRITE_ONCE(kdev->pressure, false);
		kvaccel_notify_pressure(kdev, false, usage, kdev->high_wm, kdev->low_wm);
	}
	mutex_unlock(&kdev->pressure_lock);
}

/**
 * kvaccel_pressure_set - set either or both watermarks, then re-evaluate
 * pressure.
 * @kdev: the device.
 * @high: the new high watermark in bytes (0: off), or NULL to keep it.
 * @low: the new low watermark in bytes (0: off), or NULL to keep it.
 *
 * The pair that results is checked and written under pressure_lock, so
 * concurrent callers cannot combine into an invalid pair.
 *
 * Return: 0, or -EINVAL (nothing changed) unless the resulting pair is
 * both 0 or 0 < low <= high.
 */
int kvaccel_pressure_set(struct kvaccel_device *kdev, const u64 *high, const u64 *low)
{
	u64 h, l;

	mutex_lock(&kdev->pressure_lock);
	h = high ? *high : kdev->high_wm;
	l = low ? *low : kdev->low_wm;
	if (!h != !l || l > h) {
		mutex_unlock(&kdev->pressure_lock);
		return -EINVAL;
	}
	WRITE_ONCE(kdev->high_wm, h);
	kdev->low_wm = l;
	mutex_unlock(&kdev->pressure_lock);
	kvaccel_pressure_update(kdev);
	return 0;
}
