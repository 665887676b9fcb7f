/*
 * oatab.h - an open-addressed hash table of pointers with inline tags,
 * shared by the key index shards and the content table.
 *
 * Linear probing; each slot holds a 64-bit tag (the entry's hash) and the
 * entry pointer (NULL = empty).  Lookups compare tags in the slot array and
 * dereference an entry only when its tag matches, so a miss costs no entry
 * load at all and a hit one.  Deletion shifts later entries of the run back
 * (no tombstones).  The load factor stays at or below 3/4 while memory
 * allows; oat_room() must succeed before every insert.
 *
 * Lookup loop (the caller compares its own keys):
 *   for (uint64_t i = oat_first(t, tag); t->s[i].p; i = oat_next(t, i))
 *     if (t->s[i].tag == tag && matches(t->s[i].p)) ...
 *
 * Not thread-safe: the caller's lock protects the table.
 */
#ifndef CASCADE_OATAB_H
#define CASCADE_OATAB_H

#include <stdint.h>

typedef struct oat_slot {
  uint64_t tag;
  void *p;
} oat_slot;

typedef struct oat {
  oat_slot *s;
  uint64_t mask;           /* slots - 1 */
  uint64_t n;              /* entries */
} oat;

/* slots: a power of two >= 2.  -ENOMEM on failure. */
int oat_init(oat *t, uint64_t slots);
void oat_free(oat *t);

/* Make room for one more entry (grows past 3/4 load).  -ENOMEM only when
 * the table could not grow and has a single empty slot left. */
int oat_room(oat *t);

/* Insert (after a successful oat_room). */
void oat_insert(oat *t, uint64_t tag, void *p);

/* Remove entry p, inserted with tag. */
void oat_remove(oat *t, uint64_t tag, const void *p);

static inline uint64_t oat_first(const oat *t, uint64_t tag) {
  return tag & t->mask;
}
static inline uint64_t oat_next(const oat *t, uint64_t i) {
  return (i + 1) & t->mask;
}

#endif /* CASCADE_OATAB_H */
