/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - weights in the safetensors format: an 8-byte
 * little-endian header length, a JSON header (name -> dtype, shape,
 * data_offsets; "__metadata__": string -> string), then the data. F32
 * tensors only, named as in llama (and Qwen2-MoE for experts) checkpoints;
 * the model's shape travels in "__metadata__" as "kvaccel.*" keys.
 */
#ifndef SERVE_SAFETENSORS_H
#define SERVE_SAFETENSORS_H

#include "model.h"

/** Write @m to @path; 0 or -errno with a message in @err. */
int serve_st_save(struct serve_model *m, const char *path, char *err, size_t errlen);
/**
 * Read a model from @path: the shape from its metadata, each field missing
 * there taken from @fallback. NULL and errno (EINVAL: a bad file, ENOENT,
 * ...) with a message in @err.
 */
struct serve_model *serve_st_load(const char *path, const struct serve_config *fallback,
				  char *err, size_t errlen);
/**
 * serve_st_load() with SERVE_MODEL_NO_EXPERTS in @flags: the experts'
 * entries are checked (shape, dtype, offsets) but their bytes are not read
 * (the file is mapped: their pages are never touched).
 */
struct serve_model *serve_st_load_flags(const char *path, const struct serve_config *fallback,
					uint32_t flags, char *err, size_t errlen);

#endif /* SERVE_SAFETENSORS_H */
