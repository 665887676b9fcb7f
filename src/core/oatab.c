/*
 * oatab.c - open-addressed pointer table with inline tags (see oatab.h).
 */
#include "oatab.h"

#include <errno.h>
#include <stdlib.h>

int oat_init(oat *t, uint64_t slots) {
  t->s = calloc(slots, sizeof *t->s);
  t->mask = slots - 1;
  t->n = 0;
  return t->s ? 0 : -ENOMEM;
}

void oat_free(oat *t) {
  free(t->s);
  t->s = NULL;
  t->mask = t->n = 0;
}

static void put(oat_slot *s, uint64_t mask, uint64_t tag, void *p) {
  uint64_t i = tag & mask;
  while (s[i].p) i = (i + 1) & mask;
  s[i].tag = tag;
  s[i].p = p;
}

int oat_room(oat *t) {
  if ((t->n + 1) * 4 <= (t->mask + 1) * 3) return 0;
  uint64_t nb = (t->mask + 1) * 2;
  oat_slot *ns = calloc(nb, sizeof *ns);
  if (!ns) return t->n + 1 <= t->mask ? 0 : -ENOMEM; /* keep one empty */
  for (uint64_t i = 0; i <= t->mask; i++)
    if (t->s[i].p) put(ns, nb - 1, t->s[i].tag, t->s[i].p);
  free(t->s);
  t->s = ns;
  t->mask = nb - 1;
  return 0;
}

void oat_insert(oat *t, uint64_t tag, void *p) {
  put(t->s, t->mask, tag, p);
  t->n++;
}

void oat_remove(oat *t, uint64_t tag, const void *p) {
  uint64_t mask = t->mask, i = tag & mask;
  while (t->s[i].p != p) i = (i + 1) & mask;
  /* backward shift: an entry later in the run moves into the hole unless
   * its home slot lies cyclically in (hole, its slot] */
  for (uint64_t j = (i + 1) & mask; t->s[j].p; j = (j + 1) & mask) {
    uint64_t home = t->s[j].tag & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->s[i] = t->s[j];
      i = j;
    }
  }
  t->s[i].p = NULL;
  t->s[i].tag = 0;
  t->n--;
}
