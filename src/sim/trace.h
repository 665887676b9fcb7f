/*
 * trace.h - request traces for the replayer (`cascade replay`) and the
 * metadata-only cache simulator (sim.h): loading Mooncake JSONL and Azure
 * LLM CSV traces, and generating a synthetic chat/RAG workload.
 *
 * Model.  A trace is a list of requests in arrival order.  Each request has
 * a token count for its input (prompt) and output, and a list of block ids:
 * first its nin input blocks, then its nout output blocks.  A block stands
 * for tokens_per_block tokens of the trace.  Block ids are prefix-chained:
 * two requests share their first k blocks exactly when their first k ids
 * are equal (Mooncake's hash_ids are such ids already; Azure and synthetic
 * ids are made so here).  Ids are kept densely numbered 0..nuniq-1 in
 * blk[] (so simulators index arrays by id); raw[id] is the 64-bit id the
 * trace gave (Mooncake) or that was derived (the rest), used to build the
 * store's keys.
 *
 * Partial blocks.  A request's last input block may cover fewer than
 * tokens_per_block tokens: it is a block like the others (Mooncake's
 * hash_ids cover ceil(input_length / 512) blocks, the last one partial),
 * stored at full block size, and reused only by a request with the same
 * id there.  Prefill tokens saved by a hit are capped by input_length.
 *
 * Output blocks.  Mooncake and Azure give no ids for output tokens: each
 * request gets ceil((in + out) / tpb) - nin fresh ids that nothing reuses.
 * The synthetic generator draws every segment as whole blocks, so a chat
 * turn's output blocks are exactly the ones the next turn's input repeats.
 *
 * Ownership: a sim_trace owns all its arrays; sim_trace_free() releases
 * them.  Not thread-safe; a loaded trace is read-only and may be shared.
 */
#ifndef CASCADE_SIM_TRACE_H
#define CASCADE_SIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_req {
  uint64_t t_us;       /* arrival, microseconds from the trace's start */
  uint32_t in_tokens;  /* prompt tokens */
  uint32_t out_tokens; /* generated tokens */
  uint32_t nin, nout;  /* input blocks, output blocks */
  uint32_t nprefix;    /* leading input blocks that are protected prefixes
                          (system prompts, shared documents) */
  size_t off;          /* first block id in sim_trace.blk */
} sim_req;

typedef struct sim_trace {
  sim_req *req;
  size_t nreq, req_cap;
  uint32_t *blk; /* dense block ids, request after request */
  size_t nblk, blk_cap;
  uint64_t *raw; /* raw[dense id] */
  size_t nuniq, raw_cap;
  uint64_t *map_key; /* open addressing raw -> dense (key 0 stored as ~0) */
  uint32_t *map_val;
  size_t map_cap;
  uint32_t tokens_per_block; /* tokens one block stands for */
  uint64_t fresh;            /* next raw id for a block nothing reuses */
  char source[32];           /* "mooncake", "azure", "synthetic", ... */
} sim_trace;

/* Initialise an empty trace whose blocks stand for tpb tokens. */
void sim_trace_init(sim_trace *t, uint32_t tpb, const char *source);
void sim_trace_free(sim_trace *t);

/* Append one request; ids[0..nin+nout) are raw ids (nin input blocks, then
 * nout output ones).  Returns 0 or -ENOMEM (the trace is unchanged). */
int sim_trace_add(sim_trace *t, uint64_t t_us, uint32_t in_tokens,
                  uint32_t out_tokens, const uint64_t *ids, uint32_t nin,
                  uint32_t nout, uint32_t nprefix);

/* A raw id no other block of the trace has (for blocks nothing reuses). */
uint64_t sim_trace_fresh(sim_trace *t);

/* Number of distinct ids among the input blocks (and the output blocks too
 * if with_output) of the trace. */
size_t sim_trace_unique(const sim_trace *t, int with_output);

/*
 * Load a Mooncake JSONL trace: one object per line with "timestamp" (ms),
 * "input_length", "output_length" and "hash_ids" (512 tokens per block).
 * Blank lines are skipped.  At most limit requests (0 = all).
 * Returns 0, or a negative errno with a message "FILE:LINE: what" in
 * err[errcap] (-ENOENT etc. for the file, -EINVAL for malformed content,
 * -ENOMEM).
 */
int sim_trace_load_mooncake(sim_trace *t, const char *path, size_t limit,
                            char *err, size_t errcap);

/*
 * Load an Azure LLM inference CSV trace (header
 * TIMESTAMP,ContextTokens,GeneratedTokens; timestamps
 * "YYYY-MM-DD HH:MM:SS.fffffff").  No prefix information: each request's
 * blocks are fresh ids, except that the first shared_prefix_tokens tokens
 * (whole blocks of tpb tokens) are the same for every request, marked as a
 * protected prefix.  Errors as for the Mooncake loader.
 */
int sim_trace_load_azure(sim_trace *t, const char *path, size_t limit,
                         uint32_t tpb, uint32_t shared_prefix_tokens,
                         char *err, size_t errcap);

/* Parameters of the synthetic workload (sim_synth_defaults fills them). */
typedef struct sim_synth {
  uint64_t seed;
  uint32_t requests;       /* requests generated */
  uint32_t tpb;            /* tokens per block */
  uint32_t system_prompts; /* distinct system prompts */
  uint32_t system_blocks;  /* blocks per system prompt (mean; +-50%) */
  uint32_t docs;           /* RAG document pool */
  uint32_t doc_blocks;     /* blocks per document (mean; +-50%) */
  double zipf;             /* Zipf exponent for documents and prompts */
  double rag_share;        /* share of sessions that start with a document */
  double turns;            /* mean turns per session (geometric) */
  uint32_t user_blocks;    /* blocks of a user message (mean; 1..2x) */
  uint32_t output_blocks;  /* blocks of an answer (mean; 1..2x) */
  double rate;             /* new sessions per second (Poisson) */
  double think_s;          /* mean seconds between turns (exponential) */
} sim_synth;

void sim_synth_defaults(sim_synth *s);

/* Generate the synthetic workload into t (initialised with s->tpb).
 * Returns 0 or -ENOMEM / -EINVAL (message in err). */
int sim_trace_synth(sim_trace *t, const sim_synth *s, char *err,
                    size_t errcap);

#endif /* CASCADE_SIM_TRACE_H */
