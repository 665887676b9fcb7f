/*
 * sim.c - the metadata-only cache simulator behind `cascade replay
 * --dry-run` and `--compare`: one tier of `capacity` equal-sized blocks,
 * driven by the request model of sim.h, with the engine's own policies
 * (src/policy, through policy.h) or the Belady / infinite bounds.
 *
 * Memory: one sblk per distinct block id of the trace (dense ids index
 * the array), holding the policy item and what the engine keeps per block:
 * presence, the parent link (dense id + the parent's generation when
 * linked, so a link to an evicted incarnation is recognised as stale, as
 * the engine's link to a dead descriptor is), and for Belady the position
 * of the next access.  Belady also gets next[] over the block positions
 * of the trace, computed backwards once.
 *
 * Policy attributes are maintained as the engine does (store.c):
 *   atime   a global tick, raised on every read hit, every put of a present
 *           block and when a new block is published;
 *   nhits   +1 per read hit (saturating), 0 for a new block;
 *   refs    1 (one key per block: content is unique per id);
 *   nchildren  +1 when a block is linked as a parent, -1 when that child
 *           leaves (only if the parent is still the same incarnation);
 *   protect the CASCADE_PUT_PREFIX flag of the block's last put;
 *   id      dense id + 1 (ghost lists of arc/s3fifo recognise a block
 *           coming back); evictions go through policy_evict.
 * Belady orders items by next access (farthest first) through the same
 * lazy heap, with a key function private to this file.
 *
 * Single-threaded; the simulator owns nothing after sim_run returns.
 */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define NONE UINT32_MAX
#define NEVER UINT64_MAX

typedef struct sblk {
  pol_item pi; /* first: the policy hands back &pi */
  uint64_t next;
  uint32_t gen;
  uint32_t parent, pgen;
  uint8_t present, pending;
} sblk;

typedef struct sim {
  const sim_trace *t;
  const sim_cfg *cfg;
  sblk *b;
  policy pol;
  uint64_t tick, used;
  uint64_t *next;
  rep_result *r;
} sim;

static void belady_key(const pol_item *it, uint64_t k[2]) {
  const sblk *b = (const sblk *)it;
  k[0] = NEVER - b->next; /* farthest next access first */
  k[1] = 0;
}

static const struct policy_ops belady_ops = {.name = "belady",
                                             .key = belady_key};

static void touch(sim *s, sblk *x, int hit) {
  atomic_store_explicit(&x->pi.atime, ++s->tick, memory_order_relaxed);
  if (hit) {
    uint32_t h = atomic_load_explicit(&x->pi.nhits, memory_order_relaxed);
    if (h != UINT32_MAX)
      atomic_store_explicit(&x->pi.nhits, h + 1, memory_order_relaxed);
  }
}

/* Link x to its parent (dense id p) once, if p is present, as
 * blk_set_parent does. */
static void link_parent(sim *s, uint32_t xid, uint32_t p) {
  sblk *x = &s->b[xid];
  if (p == NONE || x->parent != NONE || p == xid || !s->b[p].present) return;
  x->parent = p;
  x->pgen = s->b[p].gen;
  s->b[p].pi.nchildren++;
  policy_update(&s->pol, &s->b[p].pi);
}

static void evict(sim *s, sblk *v) {
  policy_evict(&s->pol, &v->pi); /* ghost lists remember pi.id */
  v->present = 0;
  v->gen++;
  s->used--;
  s->r->evictions++;
  if (v->parent != NONE) {
    sblk *p = &s->b[v->parent];
    if (p->gen == v->pgen && p->present) {
      p->pi.nchildren--;
      policy_update(&s->pol, &p->pi);
    }
    v->parent = NONE;
  }
}

static void set_protect(sim *s, sblk *x, int protect) {
  if (x->pi.protect == protect) return;
  x->pi.protect = (uint8_t)protect;
  if (pol_in(&x->pi)) policy_update(&s->pol, &x->pi);
}

/* One request under a policy (SIM_POLICY) or without evictions
 * (SIM_INFINITE). */
static void req_policy(sim *s, const sim_req *q, uint32_t h) {
  const uint32_t *ids = s->t->blk + q->off;
  uint32_t n = q->nin + (s->cfg->with_output ? q->nout : 0);
  uint64_t cap = s->cfg->kind == SIM_INFINITE ? NEVER : s->cfg->capacity;
  uint32_t pend[REP_PUT_CHUNK];

  for (uint32_t i = 0; i < h; i++) touch(s, &s->b[ids[i]], 1);
  for (uint32_t start = h; start < n; start += REP_PUT_CHUNK) {
    uint32_t end = n - start > REP_PUT_CHUNK ? start + REP_PUT_CHUNK : n;
    uint32_t np = 0;
    for (uint32_t j = start; j < end; j++) {
      uint32_t id = ids[j];
      sblk *x = &s->b[id];
      int prot = s->cfg->prefix_flag && j < q->nprefix;
      s->r->puts++;
      if (x->present) { /* equal content stored: a use, no copy */
        touch(s, x, 0);
        s->r->dedup_hits++;
        set_protect(s, x, prot);
        link_parent(s, id, j ? ids[j - 1] : NONE);
        continue;
      }
      if (x->pending) continue; /* the same id twice in one batch */
      while (s->used + np >= cap) {
        pol_item *v = policy_victim(&s->pol);
        if (!v) break;
        evict(s, (sblk *)v);
      }
      if (s->used + np >= cap) {
        s->r->rejected++;
        continue;
      }
      x->pending = 1;
      x->pi.protect = (uint8_t)prot;
      pend[np++] = j;
    }
    for (uint32_t k = 0; k < np; k++) {
      uint32_t j = pend[k], id = ids[j];
      sblk *x = &s->b[id];
      x->pending = 0;
      x->present = 1;
      x->parent = NONE;
      x->pi.nchildren = 0;
      x->pi.refs = 1;
      x->pi.id = (uint64_t)id + 1; /* stable identity for ghost lists */
      atomic_store_explicit(&x->pi.nhits, 0, memory_order_relaxed);
      touch(s, x, 0);
      s->used++;
      s->r->stored++;
      if (s->cfg->kind == SIM_POLICY) {
        policy_insert(&s->pol, &x->pi); /* reserved */
        link_parent(s, id, j ? ids[j - 1] : NONE);
      }
    }
  }
}

static void req_belady(sim *s, const sim_req *q, uint32_t h) {
  const uint32_t *ids = s->t->blk + q->off;
  uint32_t n = q->nin + (s->cfg->with_output ? q->nout : 0);

  for (uint32_t i = 0; i < h; i++) {
    sblk *x = &s->b[ids[i]];
    x->next = s->next[q->off + i];
    policy_update(&s->pol, &x->pi);
  }
  for (uint32_t j = h; j < n; j++) {
    sblk *x = &s->b[ids[j]];
    uint64_t nx = s->next[q->off + j];
    s->r->puts++;
    if (x->present) {
      s->r->dedup_hits++;
      x->next = nx;
      policy_update(&s->pol, &x->pi);
      continue;
    }
    if (s->used >= s->cfg->capacity) {
      sblk *v = (sblk *)policy_victim(&s->pol);
      if (!v || v->next <= nx) { /* keeping what is cached is better */
        s->r->rejected++;
        continue;
      }
      evict(s, v);
    }
    x->present = 1;
    x->next = nx;
    s->used++;
    s->r->stored++;
    policy_insert(&s->pol, &x->pi); /* reserved */
  }
}

/* next[p] = position of the next access to blk[p]'s id, NEVER if none. */
static uint64_t *next_uses(const sim_trace *t, size_t nreq, int with_output) {
  uint64_t *next = malloc((t->nblk ? t->nblk : 1) * sizeof *next);
  uint64_t *last = malloc((t->nuniq ? t->nuniq : 1) * sizeof *last);
  if (!next || !last) {
    free(next);
    free(last);
    return NULL;
  }
  for (size_t i = 0; i < t->nuniq; i++) last[i] = NEVER;
  for (size_t r = nreq; r-- > 0;) {
    const sim_req *q = &t->req[r];
    size_t n = q->nin + (with_output ? q->nout : 0);
    for (size_t i = n; i-- > 0;) {
      size_t p = q->off + i;
      next[p] = last[t->blk[p]];
      last[t->blk[p]] = p;
    }
  }
  free(last);
  return next;
}

void rep_count_request(rep_result *res, const sim_trace *t, const sim_req *q,
                       uint32_t h) {
  res->requests++;
  res->lookups += q->nin;
  res->hits += h;
  res->tokens_in += q->in_tokens;
  uint64_t saved = (uint64_t)h * t->tokens_per_block;
  res->tokens_saved += saved < q->in_tokens ? saved : q->in_tokens;
}

int sim_run(const sim_trace *t, const sim_cfg *cfg, rep_result *res,
            rep_progress_fn progress, void *arg) {
  sim s;
  size_t nreq = t->nreq;
  int rc = 0;

  memset(res, 0, sizeof *res);
  if (cfg->kind == SIM_POLICY && !cfg->ops) return -EINVAL;
  if (cfg->limit && cfg->limit < nreq) nreq = cfg->limit;
  memset(&s, 0, sizeof s);
  s.t = t;
  s.cfg = cfg;
  s.r = res;
  s.b = calloc(t->nuniq ? t->nuniq : 1, sizeof *s.b);
  if (!s.b) return -ENOMEM;
  for (size_t i = 0; i < t->nuniq; i++) {
    s.b[i].pi.hidx = POL_NOT_IN;
    s.b[i].pi.refs = 1;
    s.b[i].parent = NONE;
    s.b[i].next = NEVER;
  }
  policy_init(&s.pol, cfg->kind == SIM_BELADY ? &belady_ops
                      : cfg->ops             ? cfg->ops
                                             : &belady_ops);
  if (cfg->kind != SIM_INFINITE) {
    uint64_t cap = cfg->capacity < t->nuniq ? cfg->capacity : t->nuniq;
    if (policy_reserve(&s.pol, (size_t)cap + 1) < 0) {
      rc = -ENOMEM;
      goto out;
    }
  }
  if (cfg->kind == SIM_BELADY &&
      !(s.next = next_uses(t, nreq, cfg->with_output))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t r = 0; r < nreq; r++) {
    const sim_req *q = &t->req[r];
    const uint32_t *ids = t->blk + q->off;
    uint32_t h = 0;
    while (h < q->nin && s.b[ids[h]].present) h++;
    rep_count_request(res, t, q, h);
    if (cfg->kind == SIM_BELADY)
      req_belady(&s, q, h);
    else
      req_policy(&s, q, h);
    if (progress && (r % 1024 == 0 || r + 1 == nreq))
      progress(arg, r + 1, nreq);
  }
  res->tier_hits[1] = res->hits;
out:
  policy_fini(&s.pol);
  free(s.b);
  free(s.next);
  return rc;
}
