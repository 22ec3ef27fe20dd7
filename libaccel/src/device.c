// SPDX-License-Identifier: MIT
/*
 * libaccel - finding, opening and querying kvaccel devices.
 *
 * Devices are the accel nodes of /sys/class/accel (Debian's libdrm 2.4.114
 * does not know accel nodes) and the render nodes of /sys/class/drm whose
 * device is bound to the kvaccel platform driver: discovery reads sysfs
 * only and opens nothing. accel_device_open() then checks the DRM driver's
 * name (drmGetVersion()) of the one node it opens.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xf86drm.h>

#include "internal.h"

/* The platform driver's name (kmod/kvaccel_drv.h: KVACCEL_DRIVER_NAME). */
#define KVACCEL_DRIVER	"kvaccel"

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

/* The index of @handle in the table, or nr_handles. */
static size_t handle_find_locked(struct accel_device *dev, uint32_t handle)
{
	size_t i;

	for (i = 0; i < dev->nr_handles; i++)
		if (dev->handles[i].handle == handle)
			break;
	return i;
}

/*
 * A reference on @handle for a new object, under dev->lock: 0, or -ENOMEM
 * and the handle closed if no object owned it (only then can it fail).
 */
static int handle_ref_locked(struct accel_device *dev, uint32_t handle)
{
	size_t i = handle_find_locked(dev, handle);
	int ret;

	if (i < dev->nr_handles) {
		dev->handles[i].refs++;
		return 0;
	}
	if (dev->nr_handles == dev->max_handles) {
		ret = grow_handles(dev);
		if (ret) {
			accel_gem_close(dev, handle);
			return ret;
		}
	}
	dev->handles[dev->nr_handles].handle = handle;
	dev->handles[dev->nr_handles++].refs = 1;
	return 0;
}

/* Own a handle the file just created (REGION_CREATE, SPACE_CREATE). */
int accel_handle_adopt(struct accel_device *dev, uint32_t handle)
{
	int ret;

	pthread_mutex_lock(&dev->lock);
	ret = handle_ref_locked(dev, handle);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/*
 * Import a dma-buf and take a reference on its handle, in one critical
 * section: a dma-buf the file already holds gives back the same handle,
 * and the handle's last owner closes it under the same lock, so the import
 * never ends up on a handle that is closed (and later reused) behind it.
 */
int accel_handle_import(struct accel_device *dev, int fd, uint32_t *handle)
{
	uint32_t h;
	int ret;

	pthread_mutex_lock(&dev->lock);
	ret = accel_prime_import(dev, fd, &h);
	if (!ret)
		ret = handle_ref_locked(dev, h);
	pthread_mutex_unlock(&dev->lock);
	if (!ret)
		*handle = h;
	return ret;
}

/* Drop an object's reference; the last one closes the handle (under the lock). */
void accel_handle_unref(struct accel_device *dev, uint32_t handle)
{
	size_t i;

	pthread_mutex_lock(&dev->lock);
	i = handle_find_locked(dev, handle);
	if (i == dev->nr_handles) {
		/* Not ours (any more): closing it could close another object's. */
		pthread_mutex_unlock(&dev->lock);
		accel_log(ACCEL_LOG_ERR, "GEM handle %u released but not held", handle);
		return;
	}
	if (!--dev->handles[i].refs) {
		dev->handles[i] = dev->handles[--dev->nr_handles];
		accel_gem_close(dev, handle);
	}
	pthread_mutex_unlock(&dev->lock);
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

/* The driver of the device behind /sys/class/@class/@node is kvaccel's. */
static bool sysfs_is_kvaccel(const char *class, const char *node)
{
	char path[PATH_MAX], link[PATH_MAX], line[256];
	bool yes = false;
	const char *base;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/device/driver", class, node);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		base = strrchr(link, '/');
		return !strcmp(base ? base + 1 : link, KVACCEL_DRIVER);
	}
	/* No driver link (an unusual sysfs): the device's uevent names it. */
	snprintf(path, sizeof(path), "%s/%s/device/uevent", class, node);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!yes && fgets(line, sizeof(line), f))
		yes = !strcmp(line, "DRIVER=" KVACCEL_DRIVER "\n");
	fclose(f);
	return yes;
}

/* The number after @prefix in @name, or -1 if it is not @prefix<digits>. */
static long node_number(const char *name, const char *prefix)
{
	size_t len = strlen(prefix);
	char *end;
	long v;

	if (strncmp(name, prefix, len) || !isdigit((unsigned char)name[len]))
		return -1;
	v = strtol(name + len, &end, 10);
	return *end ? -1 : v;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/*
 * Add the /dev paths of @class's nodes @prefix<N> whose device is bound to
 * the kvaccel driver, in the order of N. Only sysfs is read: opening a node
 * of another driver could wake a runtime-suspended GPU.
 */
static int scan(const char *class, const char *prefix, const char *devdir,
		char (*paths)[ACCEL_PATH_MAX], int max, int n)
{
	long *nums = NULL, *grown;
	size_t nr = 0, room = 0, i;
	struct dirent *de;
	DIR *d = opendir(class);

	if (!d)
		return n;
	while ((de = readdir(d))) {
		long v = node_number(de->d_name, prefix);

		if (v < 0 || !sysfs_is_kvaccel(class, de->d_name))
			continue;
		if (nr == room) {
			room = room ? 2 * room : 8;
			grown = realloc(nums, room * sizeof(*nums));
			if (!grown) {
				free(nums);
				closedir(d);
				return -ENOMEM;
			}
			nums = grown;
		}
		nums[nr++] = v;
	}
	closedir(d);
	qsort(nums, nr, sizeof(*nums), cmp_long);
	for (i = 0; i < nr; i++, n++)
		if (n < max)
			snprintf(paths[n], ACCEL_PATH_MAX, "%s/%s%ld", devdir, prefix, nums[i]);
	free(nums);
	return n;
}

ACCEL_EXPORT int accel_device_list(char (*paths)[ACCEL_PATH_MAX], int max)
{
	int n;

	if (max < 0 || (max && !paths))
		return -EINVAL;
	n = scan("/sys/class/accel", "accel", "/dev/accel", paths, max, 0);
	if (n < 0)
		return n;
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

/* 0.1's struct is 0.2's from path on (libaccel/src/compat.c). */
_Static_assert(offsetof(struct accel_device_info, path) == sizeof(size_t),
	       "accel_device_info: sz, then 0.1's fields");
_Static_assert(accel_offsetofend(struct accel_device_info, process_quota) -
	       offsetof(struct accel_device_info, path) == ACCEL_DEVICE_INFO_0_1_SIZE,
	       "accel_device_info: 0.1's fields unchanged");

/*
 * The device's info from path on, as many bytes as @len (at most the end of
 * the struct): 0.1's entry point passes its whole struct, 0.2's the part of
 * the caller's struct that follows sz.
 */
int accel_device_info_bytes(struct accel_device *dev, void *dst, size_t len)
{
	struct accel_device_info i;
	int ret;

	if (!dev || !dst)
		return -EINVAL;
	i = dev->info;
	ret = get_param(dev, KVACCEL_PARAM_DEVICE_LIMIT, &i.limit);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_DEVICE_USAGE, &i.usage);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_CLIENT_USAGE, &i.process_usage);
	if (!ret)
		ret = get_param(dev, KVACCEL_PARAM_CLIENT_QUOTA, &i.process_quota);
	if (ret)
		return ret;
	if (len > sizeof(i) - offsetof(struct accel_device_info, path))
		len = sizeof(i) - offsetof(struct accel_device_info, path);
	memcpy(dst, i.path, len);
	return 0;
}

/*
 * LIBACCEL_0.2: the struct with its size (0.1's entry point: compat.c).
 * Only the versioned name is defined ("remove"): the bare name would match
 * 0.1's node of the version script too.
 */
__asm__(".symver accel_device_info, accel_device_info@@LIBACCEL_0.2, remove");
ACCEL_EXPORT int accel_device_info(struct accel_device *dev, struct accel_device_info *info)
{
	size_t len;
	int ret;

	if (!dev || !info)
		return -EINVAL;
	ret = accel_opts_valid(info, sizeof(*info));
	if (ret)
		return ret;
	len = info->sz < sizeof(*info) ? info->sz : sizeof(*info);
	if (len <= offsetof(struct accel_device_info, path))
		return 0;
	return accel_device_info_bytes(dev, info->path, len - offsetof(struct accel_device_info, path));
}
