// SPDX-License-Identifier: MIT
/*
 * libaccel - accel_xfer's memory: registrations, their descriptors and the
 * peers' remote keys.
 *
 * A descriptor (little-endian), XF_DESC_HDR bytes then UCX's packed rkey:
 *	u32 magic "KVXR" (0x5258564b), u16 version (1), u16 header length (40),
 *	u64 base address, u64 length, u32 rkey length, u32 checksum (FNV-1a
 *	over the whole descriptor with this field zero), u64 reserved (0).
 * UCX's unpacker trusts its input (it takes no length), so nothing reaches
 * it that failed these checks, and it reads from a copy padded with zeros.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

#define XF_DESC_MAGIC	0x5258564bu
#define XF_DESC_VERSION	1
#define XF_DESC_HDR	40
#define XF_RKEY_PAD	256

static uint32_t xf_fnv1a(const unsigned char *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		/* The checksum field itself (bytes 28-31) counts as zero. */
		h ^= (i >= 28 && i < 32) ? 0 : p[i];
		h *= 16777619u;
	}
	return h;
}

static void put16(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

ACCEL_EXPORT int accel_xfer_mem_map(struct accel_xfer *x, void *addr, size_t len,
				    struct accel_xfer_mem **mp)
{
	ucp_mem_map_params_t p = {
		.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
		.address = addr,
		.length = len,
	};
	struct accel_xfer_mem *m;
	ucs_status_t st;
	int ret = 0;

	if (!x || !addr || !len || !mp || (uintptr_t)addr + len < (uintptr_t)addr)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->x = x;
	m->addr = addr;
	m->len = len;
	xf_lock(x);
	st = xf_u.ucp_mem_map(x->ctx, &p, &m->memh);
	if (st != UCS_OK) {
		ret = xf_errno(st);
		goto fail;
	}
	st = xf_u.ucp_rkey_pack(x->ctx, m->memh, &m->rkey_buf, &m->rkey_len);
	if (st != UCS_OK) {
		ret = xf_errno(st);
		xf_u.ucp_mem_unmap(x->ctx, m->memh);
		goto fail;
	}
	if (m->rkey_len == 0 || m->rkey_len > ACCEL_XFER_DESC_MAX - XF_DESC_HDR) {
		accel_log(ACCEL_LOG_ERR, "xfer: UCX packed a %zu-byte rkey", m->rkey_len);
		ret = -EOVERFLOW;
		xf_u.ucp_rkey_buffer_release(m->rkey_buf);
		xf_u.ucp_mem_unmap(x->ctx, m->memh);
		goto fail;
	}
	m->next = x->mems;
	x->mems = m;
	xf_unlock(x);
	*mp = m;
	return 0;
fail:
	xf_unlock(x);
	accel_log(ACCEL_LOG_ERR, "xfer: cannot register %zu bytes: %d", len, ret);
	free(m);
	return ret;
}

void xf_mem_unmap_locked(struct accel_xfer_mem *m)
{
	struct accel_xfer *x = m->x;
	struct accel_xfer_mem **pp;

	for (pp = &x->mems; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	xf_u.ucp_rkey_buffer_release(m->rkey_buf);
	xf_u.ucp_mem_unmap(x->ctx, m->memh);
	free(m);
}

ACCEL_EXPORT void accel_xfer_mem_unmap(struct accel_xfer_mem *m)
{
	struct accel_xfer *x;

	if (!m)
		return;
	x = m->x;
	xf_lock(x);
	xf_mem_unmap_locked(m);
	xf_unlock(x);
}

/* The registration that holds [addr, addr + len) (lock held), or NULL. */
struct accel_xfer_mem *xf_mem_find(struct accel_xfer *x, const void *addr, uint64_t len)
{
	uintptr_t a = (uintptr_t)addr;
	struct accel_xfer_mem *m;

	for (m = x->mems; m; m = m->next)
		if (a >= (uintptr_t)m->addr && len <= m->len &&
		    a - (uintptr_t)m->addr <= m->len - len)
			return m;
	return NULL;
}

ACCEL_EXPORT int accel_xfer_mem_pack(const struct accel_xfer_mem *m, void *buf, size_t *len)
{
	unsigned char *p = buf;
	size_t need;

	if (!m || !len)
		return -EINVAL;
	need = XF_DESC_HDR + m->rkey_len;
	if (!buf) {
		*len = need;
		return 0;
	}
	if (*len < need) {
		*len = need;
		return -ENOSPC;
	}
	memset(p, 0, XF_DESC_HDR);
	put32(p, XF_DESC_MAGIC);
	put16(p + 4, XF_DESC_VERSION);
	put16(p + 6, XF_DESC_HDR);
	put64(p + 8, (uintptr_t)m->addr);
	put64(p + 16, m->len);
	put32(p + 24, m->rkey_len);
	memcpy(p + XF_DESC_HDR, m->rkey_buf, m->rkey_len);
	put32(p + 28, xf_fnv1a(p, need));
	*len = need;
	return 0;
}

ACCEL_EXPORT int accel_xfer_rkey(struct accel_xfer_ep *ep, const void *desc, size_t len,
				 struct accel_xfer_rkey **rkp)
{
	const unsigned char *p = desc;
	struct accel_xfer_rkey *rk;
	unsigned char *copy;
	uint64_t base, rlen;
	uint32_t klen;
	ucs_status_t st;
	int ret;

	if (!ep || !desc || !rkp || len < XF_DESC_HDR || len > ACCEL_XFER_DESC_MAX)
		return -EINVAL;
	klen = get32(p + 24);
	base = get64(p + 8);
	rlen = get64(p + 16);
	if (get32(p) != XF_DESC_MAGIC || get16(p + 4) != XF_DESC_VERSION ||
	    get16(p + 6) != XF_DESC_HDR || get64(p + 32) != 0 || klen == 0 ||
	    klen != len - XF_DESC_HDR || rlen == 0 || base + rlen < base ||
	    get32(p + 28) != xf_fnv1a(p, len)) {
		accel_log(ACCEL_LOG_WARNING, "xfer: a %zu-byte memory descriptor refused", len);
		return -EINVAL;
	}
	rk = calloc(1, sizeof(*rk));
	copy = calloc(1, klen + XF_RKEY_PAD);
	if (!rk || !copy) {
		free(rk);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, p + XF_DESC_HDR, klen);
	rk->ep = ep;
	rk->base = base;
	rk->len = rlen;
	xf_lock(ep->x);
	if (ep->err || ep->closing) {
		ret = ep->err ? ep->err : -EINVAL;
		goto fail;
	}
	st = xf_u.ucp_ep_rkey_unpack(ep->ep, copy, &rk->rkey);
	if (st != UCS_OK) {
		ret = xf_errno(st);
		accel_log(ACCEL_LOG_WARNING, "xfer: UCX refused an rkey: %s",
			  xf_u.ucs_status_string(st));
		goto fail;
	}
	rk->next = ep->rkeys;
	ep->rkeys = rk;
	xf_unlock(ep->x);
	free(copy);
	*rkp = rk;
	return 0;
fail:
	xf_unlock(ep->x);
	free(copy);
	free(rk);
	return ret;
}

/* Destroy @ep's remote keys (lock held). */
void xf_rkeys_destroy(struct accel_xfer_ep *ep)
{
	struct accel_xfer_rkey *rk;

	while ((rk = ep->rkeys)) {
		ep->rkeys = rk->next;
		xf_u.ucp_rkey_destroy(rk->rkey);
		free(rk);
	}
}

ACCEL_EXPORT void accel_xfer_rkey_destroy(struct accel_xfer_rkey *rk)
{
	struct accel_xfer_rkey **pp;
	struct accel_xfer *x;

	if (!rk)
		return;
	x = rk->ep->x;
	xf_lock(x);
	for (pp = &rk->ep->rkeys; *pp; pp = &(*pp)->next)
		if (*pp == rk) {
			*pp = rk->next;
			break;
		}
	xf_u.ucp_rkey_destroy(rk->rkey);
	xf_unlock(x);
	free(rk);
}

ACCEL_EXPORT uint64_t accel_xfer_rkey_len(const struct accel_xfer_rkey *rk)
{
	return rk ? rk->len : 0;
}
