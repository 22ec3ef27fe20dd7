// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a receiver of a shared object may do: an object reached through a
 * read-only dma-buf is read-only everywhere (an import, never the region
 * itself: not a copy destination, not bindable, mapped read-only), and a
 * space's receivers map it but rebind it only if its creator allowed it
 * (KVACCEL_SPACE_CREATE_SHARE_REBIND).
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define RS	(4 * KVT_MIB)

FIXTURE(rights) {
	int a, b;		/* two clients: the owner and a receiver */
	uint32_t ra, rb;	/* a region of each */
	unsigned char *ma, *mb;
};

FIXTURE_SETUP(rights)
{
	self->a = kvt_open();
	self->b = kvt_open();
	ASSERT_LE(0, self->a);
	ASSERT_LE(0, self->b);
	ASSERT_EQ(0, kvt_region_create(self->a, RS, 4096, &self->ra));
	ASSERT_EQ(0, kvt_region_create(self->b, RS, 4096, &self->rb));
	self->ma = kvt_region_map(self->a, self->ra, RS);
	self->mb = kvt_region_map(self->b, self->rb, RS);
	ASSERT_NE(MAP_FAILED, self->ma);
	ASSERT_NE(MAP_FAILED, self->mb);
	kvt_fill(self->ma, RS, 0xa0a0);
}

FIXTURE_TEARDOWN(rights)
{
	munmap(self->ma, RS);
	munmap(self->mb, RS);
	close(self->a);
	close(self->b);
}

/* Export @handle of @fd read-only (no DRM_RDWR). */
static int export_ro(int fd, uint32_t handle, int *dmabuf)
{
	struct drm_prime_handle ph = { .handle = handle, .flags = DRM_CLOEXEC };
	int ret = kvt_ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph);

	if (!ret)
		*dmabuf = ph.fd;
	return ret;
}

TEST_F(rights, readonly_dmabuf_gives_a_readonly_import)
{
	struct drm_kvaccel_region_info info;
	struct drm_kvaccel_copy_segment seg;
	uint32_t imp, sp, sync;
	unsigned char *m;
	int dmabuf;

	ASSERT_EQ(0, export_ro(self->a, self->ra, &dmabuf));
	ASSERT_EQ(O_RDONLY, fcntl(dmabuf, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(0, kvt_import(self->b, dmabuf, &imp));
	ASSERT_EQ(0, kvt_region_info(self->b, imp, &info));
	EXPECT_EQ(KVACCEL_OBJECT_IMPORT, info.type);
	EXPECT_TRUE(info.object_flags & KVACCEL_OBJECT_READ_ONLY);
	EXPECT_EQ(0, info.mmap_offset);

	/* A copy source, never a destination. */
	ASSERT_EQ(0, kvt_syncobj_create(self->b, &sync));
	seg = kvt_seg(imp, 0, self->rb, 0, RS);
	ASSERT_EQ(0, kvt_copy(self->b, &seg, 1, 0, sync, NULL));
	ASSERT_EQ(0, kvt_syncobj_wait(self->b, sync, 20000));
	EXPECT_TRUE(kvt_check(self->mb, RS, 0xa0a0));
	seg = kvt_seg(self->rb, 0, imp, 0, 4096);
	EXPECT_EQ(-EACCES, kvt_copy(self->b, &seg, 1, 0, 0, NULL));
	/* Not bindable. */
	ASSERT_EQ(0, kvt_space_create(self->b, 4, 4096, &sp));
	EXPECT_EQ(-EINVAL, kvt_bind1(self->b, sp, kvt_op_bind(0, imp, 0)));

	/* The dma-buf maps read-only (shared), never writable. */
	m = mmap(NULL, RS, PROT_READ, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_TRUE(kvt_check(m, RS, 0xa0a0));
	munmap(m, RS);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, RS, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0));
	EXPECT_EQ(0, memcmp(self->ma, self->mb, RS));
	close(dmabuf);
}

/* A read-write dma-buf still gives the region itself back. */
TEST_F(rights, readwrite_dmabuf_gives_the_region)
{
	struct drm_kvaccel_region_info info;
	uint32_t h;
	int dmabuf;

	ASSERT_EQ(0, kvt_export(self->a, self->ra, &dmabuf));
	ASSERT_EQ(0, kvt_import(self->b, dmabuf, &h));
	ASSERT_EQ(0, kvt_region_info(self->b, h, &info));
	EXPECT_EQ(KVACCEL_OBJECT_REGION, info.type);
	EXPECT_FALSE(info.object_flags & KVACCEL_OBJECT_READ_ONLY);
	close(dmabuf);
}

/* A read-only dma-buf of another driver: a read-only import as well. */
TEST_F(rights, readonly_foreign_dmabuf)
{
	struct drm_mode_create_dumb dumb = { .width = KVT_MIB / 4, .height = 1, .bpp = 32 };
	struct drm_prime_handle ph = { .flags = DRM_CLOEXEC };
	struct drm_kvaccel_region_info info;
	struct drm_kvaccel_copy_segment seg;
	int vgem = kvt_open_driver("vgem", 1);
	uint32_t imp;

	if (vgem < 0)
		SKIP(return, "no vgem");
	ASSERT_EQ(0, kvt_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb));
	ph.handle = dumb.handle;
	ASSERT_EQ(0, kvt_ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph));
	ASSERT_EQ(O_RDONLY, fcntl(ph.fd, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(0, kvt_import(self->b, ph.fd, &imp));
	ASSERT_EQ(0, kvt_region_info(self->b, imp, &info));
	EXPECT_TRUE(info.object_flags & KVACCEL_OBJECT_READ_ONLY);
	seg = kvt_seg(self->rb, 0, imp, 0, 4096);
	EXPECT_EQ(-EACCES, kvt_copy(self->b, &seg, 1, 0, 0, NULL));
	seg = kvt_seg(imp, 0, self->rb, 0, 4096);
	EXPECT_EQ(0, kvt_copy(self->b, &seg, 1, 0, 0, NULL));
	close(ph.fd);
	close(vgem);
}

/* A space shared with a receiver, bound to the owner's region block 3. */
static uint32_t share_space(struct __test_metadata *_metadata, FIXTURE_DATA(rights) *self,
			    uint32_t flags, uint32_t *owner_space)
{
	uint32_t sp = 0, theirs = 0;
	int dmabuf = -1;

	EXPECT_EQ(0, kvt_space_create_ex(self->a, 4, 4096, flags, &sp));
	EXPECT_EQ(0, kvt_bind1(self->a, sp, kvt_op_bind(0, self->ra, 3)));
	EXPECT_EQ(0, kvt_export(self->a, sp, &dmabuf));
	EXPECT_EQ(0, kvt_import(self->b, dmabuf, &theirs));
	close(dmabuf);
	*owner_space = sp;
	return theirs;
}

TEST_F(rights, space_receivers_map_but_do_not_rebind)
{
	uint32_t mine, theirs = share_space(_metadata, self, 0, &mine);
	unsigned char *w;
	size_t wsize;

	/* The receiver maps it and sees the owner's block. */
	w = kvt_space_map(self->b, theirs, &wsize);
	ASSERT_NE(MAP_FAILED, w);
	EXPECT_EQ(0, memcmp(w, self->ma + 3 * 4096, 4096));
	/* It may not unbind, move or bind. */
	EXPECT_EQ(-EPERM, kvt_bind1(self->b, theirs, kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0)));
	EXPECT_EQ(-EPERM, kvt_bind1(self->b, theirs, kvt_op(KVACCEL_BIND_OP_MOVE, 0, 1)));
	EXPECT_EQ(-EPERM, kvt_bind1(self->b, theirs, kvt_op_bind(1, self->rb, 0)));
	EXPECT_EQ(0, memcmp(w, self->ma + 3 * 4096, 4096));
	/* The owner still may. */
	EXPECT_EQ(0, kvt_bind1(self->a, mine, kvt_op_bind(1, self->ra, 5)));
	EXPECT_EQ(0, memcmp(w + 4096, self->ma + 5 * 4096, 4096));
	munmap(w, wsize);
}

TEST_F(rights, shareable_space_receivers_may_rebind)
{
	uint32_t mine, theirs = share_space(_metadata, self, KVACCEL_SPACE_CREATE_SHARE_REBIND,
					    &mine);

	EXPECT_EQ(0, kvt_bind1(self->b, theirs, kvt_op(KVACCEL_BIND_OP_MOVE, 0, 2)));
	EXPECT_EQ(0, kvt_bind1(self->b, theirs, kvt_op_bind(0, self->rb, 1)));
	EXPECT_EQ(0, kvt_bind1(self->a, mine, kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0)));
}

TEST_HARNESS_MAIN
