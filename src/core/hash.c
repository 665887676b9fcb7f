/*
 * hash.c - content ids (SHA-256 via OpenSSL EVP, which uses the CPU's SHA
 * extensions where present) and deterministic prefix-chained block keys.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

/* SHA-256 fetched once: with OpenSSL 3, passing EVP_sha256() makes every
 * EVP_Digest call look the implementation up again (about 8 % of a 4 KiB
 * hash).  The fetched object is kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *sha256_impl(void) {
  pthread_once(&sha256_once, sha256_fetch);
  return sha256_md ? sha256_md : EVP_sha256();
}

/* One-shot SHA-256; EVP_Digest cannot fail for SHA-256 short of a broken
 * OpenSSL, in which case the id is all zeros (dedup then only matches other
 * all-zero ids of the same namespace; never crashes). */
static void sha256(const void *data, size_t len, uint8_t out[32]) {
  unsigned int n = 0;
  if (!EVP_Digest(data, len, out, &n, sha256_impl(), NULL)) memset(out, 0, 32);
}

void hash_sha256_cid(const void *data, size_t len, cascade_cid *out) {
  uint8_t d[32];
  sha256(len ? data : "", len, d);
  memcpy(out->b, d, CASCADE_CID_BYTES);
}

int cascade_content_id(const void *data, size_t len, cascade_cid *out) {
  if (!out || (!data && len)) return -EINVAL;
  hash_sha256_cid(data, len, out);
  return 0;
}

void cascade_cid_hex(const cascade_cid *cid, char hex[CASCADE_CID_HEX]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < CASCADE_CID_BYTES; i++) {
    hex[2 * i] = digits[cid->b[i] >> 4];
    hex[2 * i + 1] = digits[cid->b[i] & 15];
  }
  hex[2 * CASCADE_CID_BYTES] = '\0';
}

int cascade_chain_keys(const uint32_t *tokens, size_t ntokens,
                       size_t tokens_per_block, const uint8_t *seed,
                       uint8_t (*keys)[CASCADE_CHAIN_KEY_BYTES],
                       size_t max_keys) {
  if (tokens_per_block == 0 || (!tokens && ntokens) || (!keys && max_keys))
    return -EINVAL;
  size_t nblocks = ntokens / tokens_per_block;
  if (nblocks > (size_t)INT32_MAX) return -EINVAL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -ENOMEM;
  uint8_t prev[CASCADE_CHAIN_KEY_BYTES];
  if (seed)
    memcpy(prev, seed, sizeof prev);
  else
    memset(prev, 0, sizeof prev);
  int rc = (int)nblocks;
  size_t nout = nblocks < max_keys ? nblocks : max_keys;
  for (size_t b = 0; b < nout; b++) {
    const uint32_t *t = tokens + b * tokens_per_block;
    unsigned int n = 0;
    if (!EVP_DigestInit_ex(ctx, sha256_impl(), NULL) ||
        !EVP_DigestUpdate(ctx, prev, sizeof prev)) {
      rc = -ENOMEM;
      break;
    }
    /* tokens as little-endian u32, converted in small batches */
    uint8_t le[256 * 4];
    for (size_t i = 0; i < tokens_per_block;) {
      size_t m = tokens_per_block - i < 256 ? tokens_per_block - i : 256;
      for (size_t j = 0; j < m; j++) {
        uint32_t v = t[i + j];
        le[4 * j] = (uint8_t)v;
        le[4 * j + 1] = (uint8_t)(v >> 8);
        le[4 * j + 2] = (uint8_t)(v >> 16);
        le[4 * j + 3] = (uint8_t)(v >> 24);
      }
      if (!EVP_DigestUpdate(ctx, le, 4 * m)) {
        rc = -ENOMEM;
        break;
      }
      i += m;
    }
    if (rc < 0 || !EVP_DigestFinal_ex(ctx, prev, &n)) {
      rc = -ENOMEM;
      break;
    }
    memcpy(keys[b], prev, sizeof prev);
  }
  EVP_MD_CTX_free(ctx);
  return rc;
}
