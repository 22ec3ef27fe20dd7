// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - per-user accounting: what a user (an effective uid, in the
 * initial user namespace) may hold, however many processes it forks.
 *
 * Today one resource: the device's mmap offset range. DRM gives a device
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
	struct kvaccel_user *user, *new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	u64 cap = kvaccel_space_window_cap();

	if (!new)
		return ERR_PTR(-ENOMEM);
	mutex_lock(&kdev->acct_lock);
	user = kvaccel_user_find_locked(kdev, uid);
	if (!user && bytes <= cap) {
		user = new;
		new = NULL;
		user->kdev = kdev;
		user->uid = uid;
		list_add_tail(&user->node, &kdev->users);
	}
	if (!user || bytes > cap - user->window) {
		user = ERR_PTR(-EDQUOT);
	} else {
		user->window += bytes;
		user->charges++;
	}
	mutex_unlock(&kdev->acct_lock);
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
	bool last;

	mutex_lock(&kdev->acct_lock);
	WARN_ON(user->window < bytes || !user->charges);
	user->window -= bytes;
	last = !--user->charges;
	if (last)
		list_del(&user->node);
	mutex_unlock(&kdev->acct_lock);
	if (last)
		kfree(user);
}
