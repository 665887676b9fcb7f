/*
 * fuzz_resp.c - libFuzzer target for the RESP2 request parser.
 *
 * Input: byte 0 picks the limits (low nibble max_args, high nibble
 * max_bulk; 0 = the default), bytes 1-2 a split point, the rest is the
 * byte stream of a client.  The stream is parsed as a server would -
 * command after command until it needs more bytes or fails - three ways:
 * all bytes at once; the first `split` bytes, then the rest; and (for short
 * inputs) one byte per read.  The pieced-together parses get each arrival
 * in a freshly allocated buffer (the old one freed), as a server compacting
 * its buffer would, so a pointer kept across calls is caught by ASan.  All
 * three must give the same transcript (results, arguments, lengths, errors).
 *
 * Checked on every call: used <= len and used > 0 on RESP_DONE; arguments
 * lie inside the command's bytes (multibulk) or the parser's scratch
 * (inline); argc within the limits; a multibulk command re-encoded from its
 * arguments gives back its bytes (save the terminators that Redis skips
 * unread); an inline command ends at its first '\n'; need is 0 or beyond
 * len; errors are Redis's texts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     src/server/resp.c tests/fuzz/fuzz_resp.c -o fuzz_resp
 *   ./fuzz_resp -max_total_time=60 corpus_dir  (seeds: tests/fuzz/corpus_resp)
 */
#include "server/resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "fuzz_resp: check failed at line %d: %s\n", __LINE__,    \
              #c);                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A transcript of one parse of the stream. */
typedef struct {
  unsigned char *b;
  size_t len, cap;
} tlog;

static void put(tlog *l, const void *d, size_t n) {
  if (l->len + n > l->cap) {
    size_t ncap = l->cap ? l->cap : 256;
    while (ncap < l->len + n)
      ncap *= 2;
    l->b = realloc(l->b, ncap);
    CHECK(l->b != NULL);
    l->cap = ncap;
  }
  if (n)
    memcpy(l->b + l->len, d, n);
  l->len += n;
}

static void put_sz(tlog *l, size_t v) {
  put(l, &v, sizeof v);
}

static const char *const errors[] = {
    "Protocol error: invalid multibulk length",
    "Protocol error: invalid bulk length",
    "Protocol error: too big mbulk count string",
    "Protocol error: too big bulk count string",
    "Protocol error: too big inline request",
    "Protocol error: unbalanced quotes in request",
};

static int known_error(const char *e) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (strcmp(e, errors[i]) == 0)
      return 1;
  static const char dollar[] = "Protocol error: expected '$', got '";
  size_t n = sizeof dollar - 1;
  return strncmp(e, dollar, n) == 0 && e[n] != '\0' && e[n] != '\r' &&
         e[n] != '\n' && strcmp(e + n + 1, "'") == 0;
}

static int inside(const char *x, size_t n, const char *base, size_t len) {
  return x >= base && x <= base + len && n <= (size_t)(base + len - x);
}

/* A multibulk command re-encoded from its arguments must be its bytes,
 * except the byte after each header's '\r' and the two after each payload
 * (Redis skips them unread, and so does the parser). */
static void check_multibulk(const char *cmd, size_t used, resp_arg *argv,
                            size_t argc) {
  char hdr[32];
  size_t at = 0;
  int n = snprintf(hdr, sizeof hdr, "*%zu\r", argc);
  CHECK(n > 0 && (size_t)n + 1 <= used && memcmp(cmd, hdr, (size_t)n) == 0);
  at = (size_t)n + 1;
  for (size_t i = 0; i < argc; i++) {
    n = snprintf(hdr, sizeof hdr, "$%zu\r", argv[i].len);
    CHECK(n > 0 && at + (size_t)n + 1 <= used);
    CHECK(memcmp(cmd + at, hdr, (size_t)n) == 0);
    at += (size_t)n + 1;
    CHECK(argv[i].p == cmd + at);
    at += argv[i].len + 2;
    CHECK(at <= used);
  }
  CHECK(at == used);
}

/*
 * Parse stream[0..n) arriving in reads ending at arr[0], arr[1], ...
 * (the last is n), appending to *out.  Returns 0, or -1 on RESP_NOMEM
 * (nothing to compare then).
 */
static int run(const char *stream, size_t n, const size_t *arr, size_t narr,
               int move, uint32_t max_args, uint64_t max_bulk, tlog *out) {
  resp_parser p;
  resp_init(&p);
  if (max_args != UINT32_MAX)
    p.max_args = max_args;
  if (max_bulk != UINT64_MAX)
    p.max_bulk = max_bulk;
  size_t base = 0;       /* stream offset of the command being parsed */
  size_t avail = arr[0]; /* bytes of the stream arrived so far */
  size_t next = 1;
  char *copy = NULL; /* with move: stream[copy_at..avail) */
  size_t copy_at = 0;
  int ret = 0;
  CHECK(narr > 0 && arr[narr - 1] == n);
  if (move) {
    copy = malloc(avail ? avail : 1);
    CHECK(copy != NULL);
    memcpy(copy, stream, avail);
  }
  for (;;) {
    const char *buf = move ? copy + (base - copy_at) : stream + base;
    size_t len = avail - base;
    resp_arg *argv;
    size_t argc, used, need;
    int rc = resp_parse(&p, buf, len, &argv, &argc, &used, &need);
    if (rc != RESP_MORE || next == narr) /* a pending read is not news */
      put_sz(out, (size_t)(rc + 2));
    if (rc == RESP_DONE) {
      CHECK(used > 0 && used <= len);
      CHECK(need == 0);
      put_sz(out, used);
      put_sz(out, argc);
      if (buf[0] == '*') {
        CHECK(argc <= p.max_args);
        if (argc > 0)
          check_multibulk(buf, used, argv, argc);
      } else {
        /* a line up to its first '\n'; words need a byte and a blank */
        CHECK(buf[used - 1] == '\n' && memchr(buf, '\n', used - 1) == NULL);
        CHECK(argc <= used / 2);
        for (size_t i = 0; i < argc; i++)
          CHECK(argv[i].len > 0 &&
                inside(argv[i].p, argv[i].len, p.scratch, p.scratch_cap));
      }
      for (size_t i = 0; i < argc; i++) {
        CHECK(buf[0] != '*' || inside(argv[i].p, argv[i].len, buf, used));
        put_sz(out, argv[i].len);
        put(out, argv[i].p, argv[i].len);
      }
      base += used;
      continue;
    }
    if (rc == RESP_MORE) {
      CHECK(need == 0 || need > len);
      CHECK(argc == 0 && used == 0);
      if (next < narr) {
        /* more bytes arrive; the unparsed ones move to a new buffer */
        avail = arr[next++];
        if (move) {
          char *c = malloc(avail - base ? avail - base : 1);
          CHECK(c != NULL);
          memcpy(c, stream + base, avail - base);
          free(copy);
          copy = c;
          copy_at = base;
        }
        continue;
      }
      put_sz(out, need);
      break;
    }
    if (rc == RESP_ERROR) {
      CHECK(known_error(p.err));
      put(out, p.err, strlen(p.err));
      /* sticky */
      CHECK(resp_parse(&p, buf, len, &argv, &argc, &used, &need) == RESP_ERROR);
      break;
    }
    CHECK(rc == RESP_NOMEM);
    ret = -1;
    break;
  }
  free(copy);
  resp_fini(&p);
  return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  uint32_t max_args =
      (data[0] & 15) ? (uint32_t)(data[0] & 15) - 1 : UINT32_MAX; /* default */
  uint64_t max_bulk = (data[0] >> 4) ? (uint64_t)((data[0] >> 4) - 1) * 3
                                     : UINT64_MAX; /* default */
  size_t split = (size_t)data[1] | (size_t)data[2] << 8;
  const char *stream = (const char *)data + 3;
  size_t n = size - 3;
  split %= n + 1;

  tlog whole = {0}, pieces = {0}, bytes = {0};
  size_t one[1] = {n}, two[2] = {split, n};
  int r = run(stream, n, one, 1, 0, max_args, max_bulk, &whole);
  r |= run(stream, n, two, 2, 1, max_args, max_bulk, &pieces);
  if (r == 0) {
    CHECK(whole.len == pieces.len);
    CHECK(whole.len == 0 || memcmp(whole.b, pieces.b, whole.len) == 0);
  }
  if (r == 0 && n <= 1024) {
    size_t *each = malloc((n + 1) * sizeof *each);
    CHECK(each != NULL);
    for (size_t i = 0; i <= n; i++)
      each[i] = i;
    if (run(stream, n, each, n + 1, 1, max_args, max_bulk, &bytes) == 0) {
      CHECK(whole.len == bytes.len);
      CHECK(whole.len == 0 || memcmp(whole.b, bytes.b, whole.len) == 0);
    }
    free(each);
  }
  free(whole.b);
  free(pieces.b);
  free(bytes.b);
  return 0;
}
