// SPDX-License-Identifier: MIT
/*
 * libaccel - finding, opening and querying kvaccel devices.
 *
 * Devices are the accel nodes of /sys/class/accel (Debian's libdrm 2.4.114
 * does not know accel nodes) and the render nodes of /sys/class/drm, whose
 * driver, asked through libdrm's drmGetVersion(), is "kvaccel".
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xf86drm.h>

#include "internal.h"

static int grow_handles(struct accel_device *dev)
{
	size_t max = dev->max_handles ? 2 * dev->max_handles : 64;
	struct accel_handle_ref *h = realloc(dev->handles, max * sizeof(*h));

	if (!h)
		return -ENOMEM;
	dev->handles = h;
	dev->max_handles = max;
	return 0;
}

int accel_ioctl(struct accel_device *dev, unsigned long request, void *arg)
{
	int ret;

	do {
		ret = ioctl(dev->fd, request, arg);
	} while (ret == -1 && errno == EINTR);
	return ret ? -errno : 0;
}

int accel_gem_close(struct accel_device *dev, uint32_t handle)
{
	struct drm_gem_close gc = { .handle = handle };

	return accel_ioctl(dev, DRM_IOCTL_GEM_CLOSE, &gc);
}

int accel_prime_export(struct accel_device *dev, uint32_t handle, int *fd)
{
	struct drm_prime_handle ph = {
		.handle = handle, .flags = DRM_CLOEXEC | DRM_RDWR, .fd = -1,
	};
	int ret = accel_ioctl(dev, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph);

	if (!ret)
		*fd = ph.fd;
	return ret;
}

int accel_prime_import(struct accel_device *dev, int fd, uint32_t *handle)
{
	struct drm_prime_handle ph = { .fd = fd };
	int ret = accel_ioctl(dev, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph);

	if (!ret)
		*handle = ph.handle;
	return ret;
}

/* Take a reference on a handle for a new object: 0 or -ENOMEM. */
int accel_handle_ref(struct accel_device *dev, uint32_t handle)
{
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < dev->nr_handles; i++)
		if (dev->handles[i].handle == handle)
			break;
	if (i < dev->nr_handles) {
		dev->handles[i].refs++;
	} else if (dev->nr_handles < dev->max_handles ||
		   !(ret = grow_handles(dev))) {
		dev->handles[dev->nr_handles].handle = handle;
		dev->handles[dev->nr_handles++].refs = 1;
	}
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/* Drop an object's reference; the last one closes the handle. */
void accel_handle_unref(struct accel_device *dev, uint32_t handle)
{
	bool last = true;
	size_t i;

	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < dev->nr_handles; i++) {
		if (dev->handles[i].handle != handle)
			continue;
		last = !--dev->handles[i].refs;
		if (last)
			dev->handles[i] = dev->handles[--dev->nr_handles];
		break;
	}
	pthread_mutex_unlock(&dev->lock);
	if (last)
		accel_gem_close(dev, handle);
}

/* 1 if @fd is a kvaccel device, 0 if another driver's. */
static int is_kvaccel(int fd)
{
	drmVersionPtr v = drmGetVersion(fd);
	int yes;

	if (!v)
		return 0;
	yes = v->name && !strcmp(v->name, "kvaccel");
	drmFreeVersion(v);
	return yes;
}

/* Add the /dev paths of @class's nodes named @prefix* that are kvaccel devices. */
static int scan(const char *class, const char *prefix, const char *devdir,
		char (*paths)[ACCEL_PATH_MAX], int max, int n)
{
	struct dirent *de;
	DIR *d = opendir(class);

	if (!d)
		return n;
	while ((de = readdir(d))) {
		char path[ACCEL_PATH_MAX];
		int fd;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", devdir, de->d_name) >= (int)sizeof(path))
			continue;
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (is_kvaccel(fd)) {
			if (n < max)
				memcpy(paths[n], path, sizeof(path));
			n++;
		}
		close(fd);
	}
	closedir(d);
	return n;
}

ACCEL_EXPORT int accel_device_list(char (*paths)[ACCEL_PATH_MAX], int max)
{
	int n;

	if (max < 0 || (max && !paths))
		return -EINVAL;
	n = scan("/sys/class/accel", "accel", "/dev/accel", paths, max, 0);
	return scan("/sys/class/drm", "renderD", "/dev/dri", paths, max, n);
}

static int get_param(struct accel_device *dev, uint32_t param, uint64_t *value)
{
	struct drm_kvaccel_get_param gp = { .param = param };
	int ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_GET_PARAM, &gp);

	if (!ret)
		*value = gp.value;
	return ret;
}

/* The ABI handshake and what never changes: version, caps, block sizes. */
static int handshake(struct accel_device *dev)
{
	uint64_t v;
	int ret;

	ret = get_param(dev, KVACCEL_PARAM_ABI_VERSION, &v);
	if (ret)
		return ret;
	dev->info.abi_major = (uint32_t)(v >> 16);
	dev->info.abi_minor = (uint32_t)(v & 0xffff);
	if (dev->info.abi_major != ACCEL_ABI_MAJOR || dev->info.abi_minor < ACCEL_ABI_MINOR_MIN) {
		accel_log(ACCEL_LOG_ERR, "%s: kvaccel ABI %u.%u, libaccel needs %u.%u or a later %u.x",
			  dev->info.path, dev->info.abi_major, dev->info.abi_minor,
			  ACCEL_ABI_MAJOR, ACCEL_ABI_MINOR_MIN, ACCEL_ABI_MAJOR);
		return -EPROTO;
	}
	ret = get_param(dev, KVACCEL_PARAM_CAPABILITIES, &dev->info.caps);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_BLOCK_SIZES, &dev->info.block_sizes);
	return ret;
}

ACCEL_EXPORT struct accel_device *accel_device_open(const char *path)
{
	char found[1][ACCEL_PATH_MAX];
	struct accel_device *dev;
	int ret;

	if (!path) {
		ret = accel_device_list(found, 1);
		if (ret <= 0) {
			accel_log(ACCEL_LOG_ERR, "no kvaccel device (is the module loaded?)");
			errno = ret < 0 ? -ret : ENODEV;
			return NULL;
		}
		path = found[0];
	}
	if (strlen(path) >= ACCEL_PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	snprintf(dev->info.path, sizeof(dev->info.path), "%s", path);
	pthread_mutex_init(&dev->lock, NULL);
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0) {
		ret = -errno;
		accel_log(ACCEL_LOG_ERR, "%s: %s", path, strerror(errno));
		goto err_free;
	}
	if (!is_kvaccel(dev->fd)) {
		accel_log(ACCEL_LOG_ERR, "%s: not a kvaccel device", path);
		ret = -ENODEV;
		goto err_close;
	}
	ret = handshake(dev);
	if (ret)
		goto err_close;
	accel_log(ACCEL_LOG_DEBUG, "%s: kvaccel ABI %u.%u, caps 0x%llx", path,
		  dev->info.abi_major, dev->info.abi_minor, (unsigned long long)dev->info.caps);
	return dev;

err_close:
	close(dev->fd);
err_free:
	pthread_mutex_destroy(&dev->lock);
	free(dev);
	errno = -ret;
	return NULL;
}

ACCEL_EXPORT void accel_device_close(struct accel_device *dev)
{
	if (!dev)
		return;
	accel_fence_pool_fini(dev);
	free(dev->handles);
	close(dev->fd);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

ACCEL_EXPORT int accel_device_fd(const struct accel_device *dev)
{
	return dev ? dev->fd : -EINVAL;
}

ACCEL_EXPORT int accel_device_info(struct accel_device *dev, struct accel_device_info *info)
{
	struct accel_device_info i;
	int ret;

	if (!dev || !info)
		return -EINVAL;
	i = dev->info;
	ret = get_param(dev, KVACCEL_PARAM_DEVICE_LIMIT, &i.limit);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_DEVICE_USAGE, &i.usage);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_CLIENT_USAGE, &i.process_usage);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_CLIENT_QUOTA, &i.process_quota);
	if (!ret)
		*info = i;
	return ret;
}
