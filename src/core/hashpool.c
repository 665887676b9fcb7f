/*
 * hashpool.c - the SHA-256 content ids of a put batch, hashed on several
 * threads.  SHA-256 runs at 1.4-1.5 GB/s per core here: below a copy, so a
 * batch of large values from one caller is bound by it unless more cores
 * hash.  The pool has hash.threads - 1 workers (hash.threads 0: the online
 * CPUs, at most 4; 1: no pool, the caller hashes alone).
 *
 * A job is the values of one put_batch: the caller and the workers take
 * values one at a time (next, under mu) until none is left, and the caller
 * returns when every value is hashed (done == n), so the job's arrays,
 * which are the caller's, are not touched after that.  One job at a time:
 * a put_batch that finds the pool busy (job_lock held by another caller)
 * hashes alone rather than wait.  Small batches (one value, or less than
 * HP_MIN_BYTES in all) are hashed by the caller alone: waking threads
 * costs more than it saves.
 *
 * Locking: job_lock (held for a whole job, try-locked) -> mu (leaf; never
 * held while hashing).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/internal.h"

#define HP_MAX_THREADS 4
#define HP_MIN_BYTES (UINT64_C(256) << 10)

struct hashpool {
  pthread_mutex_t job_lock;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
  pthread_t *th;
  int nth, stop;
  /* the job (mu) */
  hash_job *job;
  size_t n, next, done;
};

static void *hp_main(void *arg) {
  hashpool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && (p->job == NULL || p->next >= p->n))
      pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stop) break;
    hash_job *j = &p->job[p->next++];
    pthread_mutex_unlock(&p->mu);
    hash_sha256_cid(j->data, j->len, j->out);
    pthread_mutex_lock(&p->mu);
    if (++p->done == p->n) pthread_cond_signal(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int hashpool_threads(uint32_t setting) {
  if (setting > 0) return (int)setting;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > HP_MAX_THREADS ? HP_MAX_THREADS : (int)n;
}

int hashpool_open(int threads, hashpool **out) {
  *out = NULL;
  if (threads <= 1) return 0;
  hashpool *p = calloc(1, sizeof *p);
  if (!p || !(p->th = calloc((size_t)threads - 1, sizeof *p->th))) {
    free(p);
    return -ENOMEM;
  }
  pthread_mutex_init(&p->job_lock, NULL);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  for (int i = 0; i < threads - 1; i++) {
    if (pthread_create(&p->th[i], NULL, hp_main, p) != 0) break;
    p->nth++;
  }
  if (p->nth == 0) { /* no thread at all: no pool, the caller hashes */
    hashpool_close(p);
    return 0;
  }
  *out = p;
  return 0;
}

void hashpool_close(hashpool *p) {
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

void hashpool_run(hashpool *p, hash_job *jobs, size_t n) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += jobs[i].len;
  if (!p || n < 2 || bytes < HP_MIN_BYTES ||
      pthread_mutex_trylock(&p->job_lock) != 0) {
    for (size_t i = 0; i < n; i++)
      hash_sha256_cid(jobs[i].data, jobs[i].len, jobs[i].out);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->job = jobs;
  p->n = n;
  p->next = p->done = 0;
  pthread_cond_broadcast(&p->work_cv);
  while (p->next < p->n) {
    hash_job *j = &p->job[p->next++];
    pthread_mutex_unlock(&p->mu);
    hash_sha256_cid(j->data, j->len, j->out);
    pthread_mutex_lock(&p->mu);
    p->done++;
  }
  while (p->done < p->n) pthread_cond_wait(&p->done_cv, &p->mu);
  p->job = NULL;
  p->n = p->next = p->done = 0;
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_unlock(&p->job_lock);
}
