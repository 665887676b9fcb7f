/*
 * lru.c - least recently used: the block with the oldest access tick goes
 * first.  Exact, on the lazy heap of policy.c (hits cost one atomic store).
 */
#include "policy/policy.h"

static void lru_key(const pol_item *it, uint64_t k[2]) {
  k[0] = 0;
  k[1] = atomic_load_explicit(&it->atime, memory_order_relaxed);
}

const struct policy_ops policy_lru_ops = {.name = "lru", .key = lru_key};
