/*
 * copy.h - bulk copies with streaming stores (src/core/copy.c).  Kept free
 * of other engine headers so that `cascade bench dram` can compile copy.c
 * in as its streaming-copy reference row.
 */
#ifndef CASCADE_COPY_H
#define CASCADE_COPY_H

#include <stddef.h>
#include <string.h>

/* Copy n bytes with non-temporal stores (plain memcpy without AVX2 or for
 * small n); the bytes are visible to other threads once it returns. */
void copy_stream(void *dst, const void *src, size_t n);

/* Copy a value out to a caller's buffer: streaming stores for blocks of at
 * least the L2 size (their destination would not stay in cache anyway),
 * memcpy otherwise.  The engine's gets and the local client's reads. */
#define COPY_OUT_STREAM_MIN ((size_t)1 << 20)
static inline void copy_out(void *dst, const void *src, size_t n) {
  if (n >= COPY_OUT_STREAM_MIN)
    copy_stream(dst, src, n);
  else if (n)
    memcpy(dst, src, n);
}

#endif /* CASCADE_COPY_H */
