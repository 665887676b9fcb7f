/*
 * semantic.c - prefix-aware eviction for KV-cache blocks.
 *
 * Order of eviction, most evictable first (lexicographic):
 *   1. unprotected before protected prefix blocks (system prompts, shared
 *      documents marked CASCADE_PUT_PREFIX go last);
 *   2. leaves before inner blocks of a prefix chain: a child is useless
 *      without its parent, so evicting a parent first would strand its
 *      children, while evicting a leaf keeps the longest reusable prefix;
 *   3. fewer sharing keys before more (a block deduplicated under many keys
 *      serves more requests);
 *   4. least recently used first.
 * Priority classes and TTL expiry are applied by the engine on top.
 */
#include "policy/policy.h"

static void semantic_key(const pol_item *it, uint64_t k[2]) {
  uint64_t refs = it->refs > 0xffffffffu ? 0xffffffffu : it->refs;
  k[0] = ((uint64_t)(it->protect != 0) << 40) |
         ((uint64_t)(it->nchildren != 0) << 39) | refs;
  k[1] = atomic_load_explicit(&it->atime, memory_order_relaxed);
}

const struct policy_ops policy_semantic_ops = {.name = "semantic",
                                               .key = semantic_key};
