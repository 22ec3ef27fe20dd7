// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - per-user accounting: what a user (an effective uid, in the
 * initial user namespace) may hold, however many processes it forks.
 *
 * Two resources. Memory pinned under the default quota: every process
 * without a quota of its own is bound by default_quota_mb, and so are all
 * such processes of one user together, so that forking does not multiply
 * what a user may pin (kvaccel_acct_charge(); a quota the daemon grants to
 * a process is that process's alone). And the device's mmap offset range:
 * DRM gives a device
 * one fake-offset range for all its objects (1 TiB of offsets on 64-bit),
 * and every space with a device-file mapping reserves its whole window
 * there at creation. Without a bound, one user's spaces could fill it and
 * every other client's REGION_CREATE and SPACE_CREATE would fail. So the
 * windows a user's spaces reserve are capped by space_window_gb (a quarter
 * of the range by default); beyond it SPACE_CREATE fails with -EDQUOT for
 * that user only. A space created with KVACCEL_SPACE_CREATE_NO_OFFSET
 * reserves nothing (it maps through its dma-buf, at offset 0) and is not
 * counted.
 *
 * An entry lives while anything is charged to it; the charges are made
 * and dropped under kvaccel_device.acct_lock.
 */
#include <linux/slab.h>

#include "kvaccel_drv.h"

static struct kvaccel_user *kvaccel_user_find_locked(struct kvaccel_device *kdev, kuid_t uid)
{
	struct kvaccel_user *user;

	lockdep_assert_held(&kdev->acct_lock);
	list_for_each_entry(user, &kdev->users, node)
		if (uid_eq(user->uid, uid))
			return user;
	return NULL;
}

/**
 * kvaccel_user_get_locked - the entry of a user, created from @new if it
 * has none.
 * @kdev: the device, its acct_lock held.
 * @uid: the user.
 * @new: a zeroed entry the caller allocated; set to NULL if used.
 *
 * Return: the entry, or NULL if it had none and @new is NULL. An entry
 * without charges must be handed to kvaccel_user_idle_locked() before the
 * lock is dropped.
 */
struct kvaccel_user *kvaccel_user_get_locked(struct kvaccel_device *kdev, kuid_t uid,
					     struct kvaccel_user **new)
{
	struct kvaccel_user *user = kvaccel_user_find_locked(kdev, uid);

	if (user || !*new)
		return user;
	user = *new;
	*new = NULL;
	user->kdev = kdev;
	user->uid = uid;
	list_add_tail(&user->node, &kdev->users);
	return user;
}

/**
 * kvaccel_user_idle_locked - unlink a user's entry if nothing is charged
 * to it any more.
 * @user: the entry, its device's acct_lock held.
 *
 * Return: the entry to kfree() once the lock is dropped, or NULL.
 */
struct kvaccel_user *kvaccel_user_idle_locked(struct kvaccel_user *user)
{
	lockdep_assert_held(&user->kdev->acct_lock);
	if (user->charges)
		return NULL;
	WARN_ON(user->window || user->usage);
	list_del(&user->node);
	return user;
}

/**
 * kvaccel_user_charge_window - charge a space's reserved window to a user.
 * @kdev: the device.
 * @uid: the user (the creator's effective uid).
 * @bytes: the window's size in the offset range.
 *
 * Return: the user's entry (one charge held: pass it to
 * kvaccel_user_uncharge_window() with the same @bytes), or
 * ERR_PTR(-EDQUOT) beyond space_window_gb, ERR_PTR(-ENOMEM).
 */
struct kvaccel_user *kvaccel_user_charge_window(struct kvaccel_device *kdev, kuid_t uid,
						u64 bytes)
{
	struct kvaccel_user *user, *idle = NULL, *new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	u64 cap = kvaccel_space_window_cap();

	if (!new)
		return ERR_PTR(-ENOMEM);
	mutex_lock(&kdev->acct_lock);
	user = kvaccel_user_get_locked(kdev, uid, &new);
	if (bytes > cap || user->window > cap - bytes) {
		idle = kvaccel_user_idle_locked(user);
		user = ERR_PTR(-EDQUOT);
	} else {
		user->window += bytes;
		user->charges++;
	}
	mutex_unlock(&kdev->acct_lock);
	kfree(idle);
	kfree(new);
	return user;
}

/**
 * kvaccel_user_uncharge_window - a space with a reserved window is freed.
 * @user: the entry kvaccel_user_charge_window() returned.
 * @bytes: the bytes charged.
 */
void kvaccel_user_uncharge_window(struct kvaccel_user *user, u64 bytes)
{
	struct kvaccel_device *kdev = user->kdev;
	struct kvaccel_user *idle;

	mutex_lock(&kdev->acct_lock);
	if (!WARN_ON(user->window < bytes || !user->charges)) {
		user->window -= bytes;
		user->charges--;
	}
	idle = kvaccel_user_idle_locked(user);
	mutex_unlock(&kdev->acct_lock);
	kfree(idle);
}
