// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel_test_exporter - a dma-buf exporter for kvaccel's tests that
 * behaves like a GPU driver's towards importers: it refuses every
 * attachment (and counts the attempts), and offers a CPU mapping only when
 * asked to (a GPU's VRAM has none). Userspace creates buffers through
 * /dev/kvaccel-test-exporter:
 *
 *   KVTX_IOCTL_CREATE        a buffer of @size bytes (zeroed pages); with
 *                            KVTX_CREATE_VMAP it can be vmapped
 *   KVTX_IOCTL_ATTACH_COUNT  attachments attempted on any of its buffers
 *
 * Test code only: not part of kvaccel.
 */
#include <linux/atomic.h>
#include <linux/dma-buf.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iosys-map.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "kvaccel_test_exporter.h"

static atomic64_t kvtx_attach_attempts;

struct kvtx_buffer {
	unsigned long nr_pages;
	struct page **pages;
};

static int kvtx_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	atomic64_inc(&kvtx_attach_attempts);
	return -EPERM;
}

static struct sg_table *kvtx_map(struct dma_buf_attachment *attach,
				 enum dma_data_direction dir)
{
	return ERR_PTR(-EPERM);
}

static void kvtx_unmap(struct dma_buf_attachment *attach, struct sg_table *sgt,
		       enum dma_data_direction dir)
{
}

static void kvtx_free(struct kvtx_buffer *buf)
{
	unsigned long i;

	for (i = 0; i < buf->nr_pages; i++)
		if (buf->pages[i])
			__free_page(buf->pages[i]);
	kvfree(buf->pages);
	kfree(buf);
}

static void kvtx_release(struct dma_buf *dmabuf)
{
	kvtx_free(dmabuf->priv);
}

static int kvtx_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct kvtx_buffer *buf = dmabuf->priv;
	void *vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);

	if (!vaddr)
		return -ENOMEM;
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void kvtx_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	vunmap(map->vaddr);
}

static const struct dma_buf_ops kvtx_ops_held = {
	.attach = kvtx_attach,
	.map_dma_buf = kvtx_map,
	.unmap_dma_buf = kvtx_unmap,
	.release = kvtx_release,
};

static const struct dma_buf_ops kvtx_ops_vmap = {
	.attach = kvtx_attach,
	.map_dma_buf = kvtx_map,
	.unmap_dma_buf = kvtx_unmap,
	.release = kvtx_release,
	.vmap = kvtx_vmap,
	.vunmap = kvtx_vunmap,
};

static int kvtx_create(struct kvtx_create __user *uarg)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct kvtx_create args;
	struct kvtx_buffer *buf;
	struct dma_buf *dmabuf;
	unsigned long i;
	int fd;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~KVTX_CREATE_FLAGS || args.pad || !args.size ||
	    !PAGE_ALIGNED(args.size) || args.size > SZ_64M)
		return -EINVAL;
	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	buf->nr_pages = args.size >> PAGE_SHIFT;
	buf->pages = kvcalloc(buf->nr_pages, sizeof(*buf->pages), GFP_KERNEL);
	if (!buf->pages)
		goto err_free;
	for (i = 0; i < buf->nr_pages; i++) {
		buf->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!buf->pages[i])
			goto err_free;
	}
	info.ops = args.flags & KVTX_CREATE_VMAP ? &kvtx_ops_vmap : &kvtx_ops_held;
	info.size = args.size;
	info.flags = O_RDWR;
	info.priv = buf;
	dmabuf = dma_buf_export(&info);
	if (IS_ERR(dmabuf)) {
		kvtx_free(buf);
		return PTR_ERR(dmabuf);
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	if (put_user(fd, &uarg->fd)) {
		put_unused_fd(fd);
		dma_buf_put(dmabuf);
		return -EFAULT;
	}
	fd_install(fd, dmabuf->file);
	return 0;

err_free:
	kvtx_free(buf);
	return -ENOMEM;
}

static long kvtx_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case KVTX_IOCTL_CREATE:
		return kvtx_create((void __user *)arg);
	case KVTX_IOCTL_ATTACH_COUNT:
		return put_user((u64)atomic64_read(&kvtx_attach_attempts),
				(u64 __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kvtx_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kvtx_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice kvtx_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvaccel-test-exporter",
	.fops = &kvtx_fops,
	.mode = 0666,
};

module_misc_device(kvtx_misc);
MODULE_DESCRIPTION("dma-buf exporter that refuses attachments, for kvaccel's tests");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(DMA_BUF);
