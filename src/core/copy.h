/*
 * copy.h - bulk copies with streaming stores (src/core/copy.c).  Kept free
 * of other engine headers so that `cascade bench dram` can compile copy.c
 * in as its streaming-copy reference row.
 */
#ifndef CASCADE_COPY_H
#define CASCADE_COPY_H

#include <stddef.h>

/* Copy n bytes with non-temporal stores (plain memcpy without AVX2 or for
 * small n); the bytes are visible to other threads once it returns. */
void copy_stream(void *dst, const void *src, size_t n);

#endif /* CASCADE_COPY_H */
