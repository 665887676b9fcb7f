/*
 * policy.h - the one interface behind which every eviction policy sits.
 *
 * A policy orders "items" (one per stored block) and names the next victim.
 * It does not free anything: the caller removes the victim (policy_remove)
 * and reclaims the block itself.  The live engine and the trace replayer
 * both drive policies through this interface.
 *
 * Attributes the policies read live in the item and are maintained by the
 * caller:
 *   atime      last access tick; raised lock-free by readers (hit path) with
 *              a relaxed atomic store.  Ticks only ever increase.
 *   nhits      accesses since insertion (saturating), lock-free like atime.
 *   refs       keys sharing the block (>= 1).
 *   nchildren  blocks whose parent (previous block of a prefix chain) this is.
 *   protect    1 if the block is a protected prefix.
 * Whenever refs, nchildren or protect change, the caller calls
 * policy_update().  atime/nhits changes need no call: policies built on the
 * lazy heap re-read them when an item reaches the top (see heap in
 * policy.c), which keeps victim selection exact without taking any lock on
 * the hit path.
 *
 * Locking: a policy is not thread-safe; the engine calls it under its memory
 * lock.  Only atime and nhits are written concurrently (atomically).
 */
#ifndef CASCADE_POLICY_H
#define CASCADE_POLICY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pol_item {
  /* maintained by the caller */
  _Atomic uint64_t atime;
  _Atomic uint32_t nhits;
  uint32_t refs;
  uint32_t nchildren;
  uint8_t protect;
  /* private to the policy */
  uint32_t hidx;           /* heap slot, POL_NOT_IN when not inserted */
} pol_item;

#define POL_NOT_IN UINT32_MAX

typedef struct policy policy;

struct policy_ops {
  const char *name;
  /* Compute the ordering key of an item: the item with the smallest
   * (k[0], k[1]) is evicted first.  Must be non-decreasing as atime and
   * nhits grow, for the lazy heap to stay exact. */
  void (*key)(const pol_item *it, uint64_t k[2]);
};

/* A heap slot: the item's ordering key as last computed, kept inline so
 * that sifting compares keys without touching the items. */
typedef struct pol_hent {
  uint64_t k[2];
  pol_item *it;
} pol_hent;

struct policy {
  const struct policy_ops *ops;
  pol_hent *heap;          /* 4-ary min-heap on k */
  size_t n, cap;
};

/* Names of the available policies, NULL-terminated. */
extern const char *const policy_names[];

/* Look a policy up by name; NULL if unknown. */
const struct policy_ops *policy_find(const char *name);

/* Initialise an empty policy of the given kind.  Cannot fail. */
void policy_init(policy *p, const struct policy_ops *ops);
/* Free the policy's own memory (the items belong to the caller). */
void policy_fini(policy *p);

/* Make room for n items in all, so that inserts up to n cannot fail.
 * -ENOMEM on failure (nothing changed). */
int policy_reserve(policy *p, size_t n);
/* Insert an item (it->hidx must be POL_NOT_IN).  -ENOMEM on failure, which
 * cannot happen while the size stays within a successful reserve. */
int policy_insert(policy *p, pol_item *it);
/* Remove an inserted item. */
void policy_remove(policy *p, pol_item *it);
/* Re-order an inserted item after refs/nchildren/protect changed. */
void policy_update(policy *p, pol_item *it);
/* The next victim (still inserted), or NULL if empty.  O(log n) amortised. */
pol_item *policy_victim(policy *p);
/* Number of inserted items. */
static inline size_t policy_size(const policy *p) { return p->n; }
/* The i-th inserted item, i < policy_size(p), in no particular order (for
 * walking all items; any insert/remove/update/victim call may re-order). */
static inline pol_item *policy_at(const policy *p, size_t i) {
  return p->heap[i].it;
}

static inline int pol_in(const pol_item *it) { return it->hidx != POL_NOT_IN; }

#endif /* CASCADE_POLICY_H */
