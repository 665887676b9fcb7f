/*
 * workpool.c - a batch's values hashed (a put's SHA-256 content ids) or
 * copied (a put's values into the arena, a get's values out of it) on
 * several threads.  SHA-256 runs at 1.4-1.5 GB/s per core here, below a
 * copy, so a batch of large values from one caller is bound by it unless
 * more cores hash; and one core's copy (12-14 GB/s with streaming stores)
 * is below what the memory system gives two (15-19 GB/s).  The pool has
 * pool.threads - 1 workers (pool.threads 0: the online CPUs, at most 4; 1:
 * no pool, the caller works alone).
 *
 * A job is one batch: the caller and the workers take items one at a time
 * (next, under mu) until none is left, and the caller returns when every
 * item is done (done == n), so the job's arrays, which are the caller's,
 * are not touched after that.  One job at a time: a caller that finds the
 * pool busy (job_lock held by another caller) works alone rather than
 * wait.  Small jobs (one item, or less work than WP_MIN_COST: 256 KiB
 * hashed, 2 MiB copied) are done by the caller alone: waking threads costs
 * more than it saves.
 *
 * A copy made by a worker is visible to the caller when workpool_run
 * returns: streaming stores end with a fence (copy.c), and mu orders the
 * worker's done++ before the caller's read of it.
 *
 * Locking: job_lock (held for a whole job, try-locked) -> mu (leaf; never
 * held while working).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/copy.h"
#include "core/internal.h"

#define WP_MAX_THREADS 4
#define WP_MIN_COST (UINT64_C(2) << 20)
#define WP_HASH_COST 8 /* a byte hashed costs about as much as 8 copied */

struct workpool {
  pthread_mutex_t job_lock;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
  pthread_t *th;
  int nth, stop;
  /* the job (mu) */
  work_job *job;
  size_t n, next, done;
};

static void work_one(const work_job *j) {
  switch (j->op) {
  case WORK_HASH:
    hash_sha256_cid(j->src, j->len, j->cid);
    break;
  case WORK_COPY_IN:
    copy_stream(j->dst, j->src, j->len);
    break;
  case WORK_COPY_OUT:
    copy_out(j->dst, j->src, j->len);
    break;
  }
}

static void *wp_main(void *arg) {
  workpool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && (p->job == NULL || p->next >= p->n))
      pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stop) break;
    work_job *j = &p->job[p->next++];
    pthread_mutex_unlock(&p->mu);
    work_one(j);
    pthread_mutex_lock(&p->mu);
    if (++p->done == p->n) pthread_cond_signal(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int workpool_threads(uint32_t setting) {
  if (setting > 0) return (int)setting;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > WP_MAX_THREADS ? WP_MAX_THREADS : (int)n;
}

int workpool_open(int threads, workpool **out) {
  *out = NULL;
  if (threads <= 1) return 0;
  workpool *p = calloc(1, sizeof *p);
  if (!p || !(p->th = calloc((size_t)threads - 1, sizeof *p->th))) {
    free(p);
    return -ENOMEM;
  }
  pthread_mutex_init(&p->job_lock, NULL);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  for (int i = 0; i < threads - 1; i++) {
    if (pthread_create(&p->th[i], NULL, wp_main, p) != 0) break;
    p->nth++;
  }
  if (p->nth == 0) { /* no thread at all: no pool, the caller works */
    workpool_close(p);
    return 0;
  }
  *out = p;
  return 0;
}

void workpool_close(workpool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nth; i++) pthread_join(p->th[i], NULL);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->job_lock);
  free(p->th);
  free(p);
}

void workpool_run(workpool *p, work_job *jobs, size_t n) {
  uint64_t cost = 0;
  for (size_t i = 0; i < n; i++)
    cost += (uint64_t)jobs[i].len * (jobs[i].op == WORK_HASH ? WP_HASH_COST : 1);
  if (!p || n < 2 || cost < WP_MIN_COST ||
      pthread_mutex_trylock(&p->job_lock) != 0) {
    for (size_t i = 0; i < n; i++) work_one(&jobs[i]);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->job = jobs;
  p->n = n;
  p->next = p->done = 0;
  pthread_cond_broadcast(&p->work_cv);
  while (p->next < p->n) {
    work_job *j = &p->job[p->next++];
    pthread_mutex_unlock(&p->mu);
    work_one(j);
    pthread_mutex_lock(&p->mu);
    p->done++;
  }
  while (p->done < p->n) pthread_cond_wait(&p->done_cv, &p->mu);
  p->job = NULL;
  p->n = p->next = p->done = 0;
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_unlock(&p->job_lock);
}
