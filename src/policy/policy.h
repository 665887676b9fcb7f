/*
 * policy.h - the one interface behind which every eviction policy sits.
 *
 * A policy orders "items" (one per stored block) and names the next victim.
 * It does not free anything: the caller removes the victim (policy_evict,
 * or policy_remove) and reclaims the block itself.  The live engine and the
 * trace replayer both drive policies through this interface.
 *
 * Policies (policy_names[]):
 *   lru       least recently used (lazy heap, exact)
 *   semantic  prefix-aware: protected last, leaves before parents, shared
 *             blocks later, then LRU (lazy heap, exact)
 *   lfu       LFU with dynamic aging, LFU-DA (lazy heap; see lfu.c)
 *   arc       adaptive replacement, as CAR (clock lists T1/T2, ghost lists
 *             B1/B2, adaptive target p; see arc.c)
 *   s3fifo    S3-FIFO: small FIFO (10%), main FIFO with a 2-bit clock,
 *             ghost FIFO (see s3fifo.c)
 * Policies count items, not bytes: every size and target (ARC's c and p,
 * S3-FIFO's 10% / 90%) is a number of items, taken from the number of
 * items inserted at the time it is needed.
 *
 * Attributes the policies read live in the item and are maintained by the
 * caller:
 *   atime      last access tick; raised lock-free by readers (hit path) with
 *              a relaxed atomic store.  Ticks only ever increase.
 *   nhits      accesses since insertion (saturating), lock-free like atime.
 *   refs       keys sharing the block (>= 1).
 *   nchildren  blocks whose parent (previous block of a prefix chain) this is.
 *   protect    1 if the block is a protected prefix.
 *   id         a stable identity of the block's content (0 = none), set
 *              before policy_insert.  Ghost lists (arc, s3fifo) remember
 *              evicted items by id, never by pointer (descriptors are
 *              recycled); inserting an item whose id a ghost list holds is
 *              a ghost hit.  Items with id 0 never match.
 * Whenever refs, nchildren or protect change, the caller calls
 * policy_update().  atime/nhits changes need no call: no policy can be told
 * of a hit (the hit path takes no policy lock), so every policy reads them
 * lazily - the heap policies when an item reaches the top (see heap in
 * policy.c), the queue policies when an item reaches the head of its queue
 * (a hit is "noticed" then, as a CLOCK reference bit would be).
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
  uint32_t hidx; /* slot (heap or queue), POL_NOT_IN when not inserted */
  /* maintained by the caller */
  uint64_t id; /* stable identity for ghost lists; 0 = none */
} pol_item;

/* The engine keeps a pol_item at the start of its block descriptor, in the
 * cache line the hit path touches: keep it small. */
_Static_assert(sizeof(pol_item) <= 40, "pol_item grew");

#define POL_NOT_IN UINT32_MAX

typedef struct policy policy;

struct policy_ops {
  const char *name;
  /* Every policy: an ordering key computed from the item's attributes
   * alone; the item with the smallest (k[0], k[1]) is the most evictable.
   * For lru and semantic it is the heap order itself; for every policy it
   * ranks items that are in no policy instance (the engine's disk-tier
   * reclaim compares sampled disk blocks with it).  Non-decreasing as atime
   * and nhits grow. */
  void (*key)(const pol_item *it, uint64_t k[2]);
  /* Heap policies whose order also depends on the policy's state (lfu):
   * the heap key; old is the key stored when the item was last keyed, NULL
   * on insert.  It must be >= old (lexicographically) whenever only
   * atime/nhits changed, for the lazy heap to stay exact.  NULL: the heap
   * key is key(). */
  void (*lazy_key)(const policy *p, const pol_item *it, const uint64_t *old,
                   uint64_t k[2]);
  /* Queue policies (arc, s3fifo); NULL for heap policies.  Slots are
   * indices into p->q; POL_NIL is "none".
   *   qinsert: slot (p->q[slot].it set, linked nowhere) was just added;
   *            ghost is the ghost entry holding its id, or POL_NIL; the
   *            policy removes that entry (pq_ghost_del) and links slot.
   *   qvictim: the slot of the next victim (p->n > 0), O(1) amortised.
   *   qevict:  slot is being evicted (still linked): remember its id in
   *            the ghost lists if the policy wants to. */
  void (*qinsert)(policy *p, uint32_t slot, uint32_t ghost);
  /* (qevict is also called for a heap policy that has one, with slot the
   * item's heap index: semantic remembers evicted ids that way.) */
  uint32_t (*qvictim)(policy *p);
  void (*qevict)(policy *p, uint32_t slot);
  /* Ghost entries reserved per reserved item (0 means 1): how far back a
   * policy with qevict may remember evicted ids. */
  unsigned ghost_mult;
};

/* A heap slot: the item's ordering key as last computed, kept inline so
 * that sifting compares keys without touching the items. */
typedef struct pol_hent {
  uint64_t k[2];
  pol_item *it;
} pol_hent;

#define POL_NIL UINT32_MAX

/* A queue slot (resident item) or a ghost entry (an evicted item's id),
 * linked into one of the policy's lists. */
typedef struct pol_qent {
  union {
    pol_item *it; /* queue slot */
    uint64_t id;  /* ghost entry */
  };
  uint64_t seen;       /* queue slot: atime / nhits last looked at */
  uint32_t prev, next; /* neighbours in its list (towards head / tail) */
  uint8_t list;        /* which list */
  uint8_t freq;        /* s3fifo: 2-bit access counter */
} pol_qent;

/* A list of slots: head is the oldest (examined / dropped first). */
typedef struct pol_list {
  uint32_t head, tail, len;
} pol_list;

struct policy {
  const struct policy_ops *ops;
  size_t n, cap; /* items inserted; items reserved */
  /* heap policies */
  pol_hent *heap;       /* 4-ary min-heap on k, n entries */
  uint64_t last_key[2]; /* key of the last victim named (lfu's aging) */
  /* queue policies: q[0..n) dense (it->hidx indexes it), in lists l[] */
  pol_qent *q;
  pol_list l[2];  /* arc: T1, T2; s3fifo: S, M */
  pol_qent *g;    /* ghost entries g[0..ng), dense, cap of them */
  pol_list gl[2]; /* arc: B1, B2; s3fifo: G (gl[0]) */
  uint32_t *gh;   /* ghost hash: id -> entry + 1 (0 empty), gmask + 1 */
  size_t ng, gmask;
  size_t gcap;     /* ghost entries reserved: cap * ghost_mult */
  uint64_t target; /* arc: p, the target size of T1 in items */
};

/* Names of the available policies, NULL-terminated. */
extern const char *const policy_names[];

/* Look a policy up by name; NULL if unknown. */
const struct policy_ops *policy_find(const char *name);

/* Initialise an empty policy of the given kind.  Cannot fail. */
void policy_init(policy *p, const struct policy_ops *ops);
/* Free the policy's own memory (the items belong to the caller; they are
 * marked not inserted). */
void policy_fini(policy *p);

/* Make room for n items in all (and for the ghost entries that go with
 * them), so that inserts up to n cannot fail.  -ENOMEM on failure
 * (nothing changed). */
int policy_reserve(policy *p, size_t n);
/* Insert an item (it->hidx must be POL_NOT_IN; it->id set, or 0).  A ghost
 * hit when a ghost list holds it->id.  -ENOMEM on failure, which cannot
 * happen while the size stays within a successful reserve. */
int policy_insert(policy *p, pol_item *it);
/* Remove an inserted item: a delete, a move, a victim set aside.  Leaves
 * no ghost. */
void policy_remove(policy *p, pol_item *it);
/* Remove an inserted item because it is evicted (normally the victim just
 * named): as policy_remove, and arc/s3fifo remember it->id in their ghost
 * lists.  Does not allocate. */
void policy_evict(policy *p, pol_item *it);
/* Re-order an inserted item after refs/nchildren/protect changed. */
void policy_update(policy *p, pol_item *it);
/* The next victim (still inserted), or NULL if empty.  O(log n) amortised
 * (heap policies) or O(1) amortised (queue policies).  Queue policies
 * re-order their queues while looking (hits noticed), so the same call
 * twice with no hit in between names the same item. */
pol_item *policy_victim(policy *p);
/* Number of inserted items. */
static inline size_t policy_size(const policy *p) { return p->n; }
/* The i-th inserted item, i < policy_size(p), in no particular order (for
 * walking all items; any insert/remove/update/victim call may re-order). */
pol_item *policy_at(const policy *p, size_t i);

static inline int pol_in(const pol_item *it) { return it->hidx != POL_NOT_IN; }

/* ---- for the queue policies (policy.c) ---- */

/* Append slot i of array a to the tail of list l (a[i].list is set by the
 * caller's choice of l: lid). */
void pq_push(pol_qent *a, pol_list *l, uint8_t lid, uint32_t i);
/* Unlink slot i of a from list l. */
void pq_unlink(pol_qent *a, pol_list *l, uint32_t i);
/* Move queue slot i to the tail of list lid. */
void pq_move(policy *p, uint32_t i, uint8_t lid);
/* The ghost entry holding id, or POL_NIL. */
uint32_t pq_ghost_find(const policy *p, uint64_t id);
/* Remember id at the tail (most recent end) of ghost list lid; the caller
 * has made room (p->ng < p->gcap).  An older entry for id is dropped. */
void pq_ghost_add(policy *p, uint8_t lid, uint64_t id);
/* Drop ghost entry gi. */
void pq_ghost_del(policy *p, uint32_t gi);

#endif /* CASCADE_POLICY_H */
