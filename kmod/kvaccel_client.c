// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - the clients (open files) of the device: their ids, the list the
 * netlink dumps walk, and the count of handles each holds by object kind.
 *
 * Handles are counted through the GEM objects' open and close callbacks,
 * which the DRM core calls for every handle created and deleted, including
 * those it deletes when the file closes; the counters never need the
 * file's handle table (which the core tears down without its lock).
 */
#include <linux/cred.h>
#include <drm/drm_file.h>

#include "kvaccel_drv.h"

/**
 * kvaccel_clients_init - set up the device's client list.
 * @kdev: the device.
 */
void kvaccel_clients_init(struct kvaccel_device *kdev)
{
	mutex_init(&kdev->clients_lock);
	INIT_LIST_HEAD(&kdev->clients);
	kdev->nr_clients = 0;
	kdev->next_client_id = 1;
}

/**
 * kvaccel_client_add - give a new client its id and list it, then tell
 * the events group.
 * @client: the client, with kdev and proc set.
 */
void kvaccel_client_add(struct kvaccel_client *client)
{
	struct kvaccel_device *kdev = client->kdev;

	client->uid = current_euid();
	atomic_set(&client->region_handles, 0);
	atomic_set(&client->space_handles, 0);
	atomic_set(&client->import_handles, 0);

	mutex_lock(&kdev->clients_lock);
	client->id = kdev->next_client_id++;
	list_add_tail(&client->node, &kdev->clients);
	kdev->nr_clients++;
	mutex_unlock(&kdev->clients_lock);

	kvaccel_notify_client(client, true);
}

/**
 * kvaccel_client_remove - unlist a closing client, then tell the events
 * group.
 * @client: the client.
 */
void kvaccel_client_remove(struct kvaccel_client *client)
{
	struct kvaccel_device *kdev = client->kdev;

	mutex_lock(&kdev->clients_lock);
	list_del(&client->node);
	kdev->nr_clients--;
	mutex_unlock(&kdev->clients_lock);

	kvaccel_notify_client(client, false);
}

static atomic_t *kvaccel_handle_counter(struct drm_gem_object *obj,
					struct kvaccel_client *client)
{
	if (kvaccel_is_region(obj))
		return &client->region_handles;
	if (kvaccel_is_space(obj))
		return &client->space_handles;
	return &client->import_handles;
}

/**
 * kvaccel_gem_handle_open - &drm_gem_object_funcs.open of every kvaccel
 * object: count the new handle.
 * @obj: the object.
 * @file: the file the handle is created in.
 *
 * Return: 0.
 */
int kvaccel_gem_handle_open(struct drm_gem_object *obj, struct drm_file *file)
{
	atomic_inc(kvaccel_handle_counter(obj, file->driver_priv));
	return 0;
}

/**
 * kvaccel_gem_handle_close - &drm_gem_object_funcs.close of every kvaccel
 * object: uncount the handle.
 * @obj: the object.
 * @file: the file the handle is deleted from.
 */
void kvaccel_gem_handle_close(struct drm_gem_object *obj, struct drm_file *file)
{
	atomic_dec(kvaccel_handle_counter(obj, file->driver_priv));
}
