/*
 * lfu.c - least frequently used with dynamic aging (LFU-DA, Arlitt et al.,
 * "Evaluating content management techniques for Web proxy caches", 2000),
 * on the lazy heap of policy.c.
 *
 * Textbook LFU-DA: a global "inflation" L starts at 0; an item's key is
 * K = L + f, set on insertion (f = 1) and on every hit (f + 1, with the L
 * of that moment); the item with the smallest K goes, and L becomes its K.
 * Items that were popular long ago thus age out: new and recently hit
 * items start from the raised L.
 *
 * Here: f = nhits + 1 (accesses since the block was created, the put being
 * the first), ties broken by atime (least recently used first), so the key
 * is (L' + nhits + 1, atime) where L' is the L of the moment the key was
 * computed.  The hit path cannot tell the policy, so a hit is noticed
 * lazily: when the item reaches the top of the heap (or policy_update is
 * called on it) with an atime other than the stored one, its key is
 * recomputed with the current L.  L only grows (it is the key of the last
 * victim, the heap minimum, and every key is computed as L + f >= L + 1),
 * and nhits and atime only grow, so a recomputed key is never below the
 * stored one - what the lazy heap needs to stay exact.
 * Deviation from the textbook: a hit is charged with the L of the moment
 * it is noticed, not of the moment it happened: L' >= L, so an item hit
 * long ago but noticed only now counts as "recent", as if hit at noticing
 * time.  Noticing happens at the latest when the item would otherwise be
 * the victim, so a hit item is never evicted on a stale key.  Several hits
 * between two noticings add their count to f as they would in the
 * textbook.
 *
 * L is set by policy_victim (the key of the item it names), so it also
 * rises when the engine sets a pinned victim aside: that victim was the
 * minimum, so the next real victim's key is >= L anyway.
 */
#include "policy/policy.h"

static void lfu_key(const policy *p, const pol_item *it, const uint64_t *old,
                    uint64_t k[2]) {
  uint64_t a = atomic_load_explicit(&it->atime, memory_order_relaxed);
  if (old && old[1] == a) { /* no access since it was keyed */
    k[0] = old[0];
    k[1] = old[1];
    return;
  }
  uint64_t f =
      (uint64_t)atomic_load_explicit(&it->nhits, memory_order_relaxed) + 1;
  k[0] = p->last_key[0] + f;
  k[1] = a;
}

/* The rank of an item outside the heap (no L there): frequency, then
 * recency. */
static void lfu_rank(const pol_item *it, uint64_t k[2]) {
  k[0] = atomic_load_explicit(&it->nhits, memory_order_relaxed);
  k[1] = atomic_load_explicit(&it->atime, memory_order_relaxed);
}

const struct policy_ops policy_lfu_ops = {
    .name = "lfu", .key = lfu_rank, .lazy_key = lfu_key};
