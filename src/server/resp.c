/*
 * resp.c - incremental RESP2 request parser (the API is in resp.h).
 *
 * States (p->state):
 *
 *   ST_START   nothing of the command seen yet: a '*' starts a multibulk,
 *              any other byte an inline command.
 *   ST_COUNT   the "*N\r\n" line at offset 0.
 *   ST_HDR     a "$L\r\n" line starting at p->pos.
 *   ST_BULK    L = p->bulk payload bytes at p->pos, then two bytes of CRLF.
 *   ST_INLINE  a line ending in '\n', at offset 0.
 *   ST_ERROR   sticky until resp_reset: the stream cannot be resynchronised.
 *
 * Only offsets survive a RESP_MORE (p->pos, p->offs[]), never pointers, so
 * the caller may move its buffer between calls.  Nothing is read twice:
 *
 *   - while a line (ST_COUNT, ST_HDR, ST_INLINE) is incomplete, p->bulk
 *     holds -1 - (bytes of it already searched for the terminator); plain
 *     -1 is a line not searched yet, as resp.h says.  The next call
 *     searches only the new bytes.
 *   - a bulk's payload is never read at all: its end is known from its
 *     length, and only compared with len.  A 512 MB bulk arriving in 10,000
 *     reads costs 10,000 comparisons.
 *
 * A multibulk argument is recorded as (offset, length) when its header is
 * parsed; argv[] is filled from them once, on RESP_DONE, against the buffer
 * of that call.  An inline command is unquoted into p->scratch (never longer
 * than the line, as unquoting only shrinks), its offsets into the scratch.
 * The three arrays grow together, geometrically, as arguments arrive - never
 * from the declared count, which the client chooses - and are kept from one
 * command to the next: no allocation per command once warm.
 *
 * Redis compatibility (networking.c processMultibulkBuffer and
 * processInlineBuffer, sds.c sdssplitargs, util.c string2ll): the same
 * error texts and limits, and the same laxness where Redis is lax:
 *   - a header line ends at its '\r'; the byte after it is skipped, not
 *     checked.  Likewise the two bytes after a payload.
 *   - numbers are string2ll's: optional '-', no '+', no spaces, no leading
 *     zeros ("0" itself is fine, "-0" is not), within int64_t.  "*-1" and
 *     "*0" are empty commands; "$-1" is an invalid bulk length.
 *   - a header line whose '\r' is not among its first RESP_MAX_INLINE + 1
 *     bytes is "too big": that is what Redis answers when the line arrives
 *     in pieces.  (Redis, handed a longer line whole, parses it instead; the
 *     result here does not depend on how the bytes were split.)
 *   - in a multibulk, the '$' is checked only once its line is complete,
 *     as in Redis ("*1\r\nX..." waits for a '\r', up to the limit).
 *   - inline: empty arguments ("" or '') are dropped, as processInlineBuffer
 *     does.  Unlike Redis, which runs C string functions over the line, a
 *     NUL byte is an ordinary character (Redis would wait for more input).
 *   - "expected '$', got '%c'": Redis's reply writer turns a '\r' or '\n' in
 *     an error into a space; so do we, and a NUL too (Redis would cut the
 *     message short there).
 */
#include "server/resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_START, ST_COUNT, ST_HDR, ST_BULK, ST_INLINE, ST_ERROR };

/* First growth of the argument arrays; then they double. */
#define RESP_MIN_CAP 8

void resp_reset(resp_parser *p) {
  p->state = ST_START;
  p->pos = 0;
  p->nargs = 0;
  p->bulk = -1;
  p->argc = 0;
  p->err[0] = '\0';
}

void resp_init(resp_parser *p) {
  memset(p, 0, sizeof *p);
  p->max_bulk = RESP_MAX_BULK_DEFAULT;
  p->max_args = RESP_MAX_ARGS_DEFAULT;
  resp_reset(p);
}

void resp_fini(resp_parser *p) {
  free(p->offs);
  free(p->lens);
  free(p->argv);
  free(p->scratch);
  p->offs = NULL;
  p->lens = NULL;
  p->argv = NULL;
  p->scratch = NULL;
  p->cap = 0;
  p->scratch_cap = 0;
  resp_reset(p);
}

static int fail(resp_parser *p, const char *msg) {
  snprintf(p->err, sizeof p->err, "Protocol error: %s", msg);
  p->state = ST_ERROR;
  return RESP_ERROR;
}

/*
 * Make room for one more argument.  The arrays are grown one by one; cap
 * moves only once all three have grown, so a failure leaves the parser
 * consistent (a larger block is harmless) and the call can be retried.
 */
static int grow(resp_parser *p) {
  if (p->argc < p->cap)
    return 0;
  size_t ncap = p->cap ? p->cap * 2 : RESP_MIN_CAP;
  if (ncap < p->cap || ncap > SIZE_MAX / sizeof(resp_arg))
    return RESP_NOMEM;
  uint64_t *o = realloc(p->offs, ncap * sizeof *o);
  if (!o)
    return RESP_NOMEM;
  p->offs = o;
  uint64_t *l = realloc(p->lens, ncap * sizeof *l);
  if (!l)
    return RESP_NOMEM;
  p->lens = l;
  resp_arg *a = realloc(p->argv, ncap * sizeof *a);
  if (!a)
    return RESP_NOMEM;
  p->argv = a;
  p->cap = ncap;
  return 0;
}

/*
 * Find the terminator of the line starting at p->pos: 1 with *eol its
 * offset, 0 if more bytes are needed, -1 if the line is too long (the
 * terminator is not among its first RESP_MAX_INLINE + 1 bytes: with
 * RESP_MAX_INLINE + 1 bytes available and no terminator, Redis gives up).
 * Remembers how far it searched, so no byte is searched twice.
 */
static int find_eol(resp_parser *p, const char *buf, size_t len, char term,
                    size_t *eol) {
  size_t start = (size_t)p->pos;
  size_t from = start + (size_t)(-1 - p->bulk);
  size_t limit = start + RESP_MAX_INLINE + 1;
  size_t end = len < limit ? len : limit;
  if (from < end) {
    const char *hit = memchr(buf + from, term, end - from);
    if (hit) {
      *eol = (size_t)(hit - buf);
      /* a '\r' may be found before the '\n' after it arrives */
      p->bulk = -1 - (int64_t)(*eol - start);
      return 1;
    }
    p->bulk = -1 - (int64_t)(end - start);
  }
  return len >= limit ? -1 : 0;
}

/* Redis's string2ll: the whole of s[0..n) is a decimal int64_t. */
static int parse_ll(const char *s, size_t n, int64_t *out) {
  if (n == 1 && s[0] == '0') {
    *out = 0;
    return 1;
  }
  int neg = n > 0 && s[0] == '-';
  size_t i = neg ? 1 : 0;
  if (i == n || s[i] < '1' || s[i] > '9')
    return 0;
  uint64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return 0;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1)
      return 0;
    /* -(v - 1) - 1 stays in range for v = 2^63 */
    *out = -(int64_t)(v - 1) - 1;
  } else {
    if (v > (uint64_t)INT64_MAX)
      return 0;
    *out = (int64_t)v;
  }
  return 1;
}

/* sdssplitargs's blanks: C-locale isspace (Redis never sets LC_CTYPE). */
static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
 * Split s[0..n) into arguments as sdssplitargs does, unquoting into
 * p->scratch (sized >= n by the caller); non-empty arguments are recorded in
 * offs/lens, as processInlineBuffer drops empty ones.  Where sdssplitargs
 * tests for the string's NUL, this tests for i == n.
 */
static int split_inline(resp_parser *p, const char *s, size_t n) {
  char *out = p->scratch;
  size_t i = 0, o = 0;
  p->argc = 0;
  for (;;) {
    while (i < n && is_blank(s[i]))
      i++;
    if (i == n)
      return 0;
    size_t start = o;
    int inq = 0, insq = 0, done = 0;
    while (!done) {
      if (inq) {
        if (i == n)
          return fail(p, "unbalanced quotes in request");
        if (s[i] == '\\' && n - i > 3 && s[i + 1] == 'x' &&
            hex_val(s[i + 2]) >= 0 && hex_val(s[i + 3]) >= 0) {
          out[o++] = (char)(hex_val(s[i + 2]) * 16 + hex_val(s[i + 3]));
          i += 3;
        } else if (s[i] == '\\' && n - i > 1) {
          char c;
          switch (s[++i]) {
          case 'n':
            c = '\n';
            break;
          case 'r':
            c = '\r';
            break;
          case 't':
            c = '\t';
            break;
          case 'b':
            c = '\b';
            break;
          case 'a':
            c = '\a';
            break;
          default:
            c = s[i];
            break;
          }
          out[o++] = c;
        } else if (s[i] == '"') {
          /* a closing quote must be followed by a blank or the end */
          if (n - i > 1 && !is_blank(s[i + 1]))
            return fail(p, "unbalanced quotes in request");
          done = 1;
        } else {
          out[o++] = s[i];
        }
      } else if (insq) {
        if (i == n)
          return fail(p, "unbalanced quotes in request");
        if (s[i] == '\\' && n - i > 1 && s[i + 1] == '\'') {
          i++;
          out[o++] = '\'';
        } else if (s[i] == '\'') {
          if (n - i > 1 && !is_blank(s[i + 1]))
            return fail(p, "unbalanced quotes in request");
          done = 1;
        } else {
          out[o++] = s[i];
        }
      } else if (i == n) {
        done = 1;
      } else {
        switch (s[i]) {
        case ' ':
        case '\n':
        case '\r':
        case '\t':
          done = 1;
          break;
        case '"':
          inq = 1;
          break;
        case '\'':
          insq = 1;
          break;
        default:
          out[o++] = s[i];
          break;
        }
      }
      if (i < n)
        i++;
    }
    if (o > start) {
      if (grow(p) != 0)
        return RESP_NOMEM;
      p->offs[p->argc] = start;
      p->lens[p->argc] = o - start;
      p->argc++;
    }
  }
}

/* An inline line [0, eol) is complete ('\n' at eol): split it. */
static int parse_inline(resp_parser *p, const char *buf, size_t eol) {
  size_t n = eol;
  if (n > 0 && buf[n - 1] == '\r')
    n--;
  if (n > p->scratch_cap) {
    size_t ncap = p->scratch_cap ? p->scratch_cap : 64;
    while (ncap < n)
      ncap *= 2; /* n <= RESP_MAX_INLINE: cannot overflow */
    char *s = realloc(p->scratch, ncap);
    if (!s)
      return RESP_NOMEM;
    p->scratch = s;
    p->scratch_cap = ncap;
  }
  return split_inline(p, buf, n);
}

/* Hand the finished command over and get ready for the next one. */
static int done(resp_parser *p, const char *base, size_t end, resp_arg **argv,
                size_t *argc, size_t *used) {
  for (size_t i = 0; i < p->argc; i++) {
    p->argv[i].p = base + (size_t)p->offs[i];
    p->argv[i].len = (size_t)p->lens[i];
  }
  *argv = p->argv;
  *argc = p->argc;
  *used = end;
  resp_reset(p);
  return RESP_DONE;
}

int resp_parse(resp_parser *p, const char *buf, size_t len, resp_arg **argv,
               size_t *argc, size_t *used, size_t *need) {
  size_t eol;
  int r;
  *argv = NULL;
  *argc = 0;
  *used = 0;
  *need = 0;
  for (;;) {
    switch (p->state) {
    case ST_START:
      if (len == 0)
        return RESP_MORE;
      p->state = buf[0] == '*' ? ST_COUNT : ST_INLINE;
      break;

    case ST_INLINE:
      r = find_eol(p, buf, len, '\n', &eol);
      if (r < 0)
        return fail(p, "too big inline request");
      if (r == 0)
        return RESP_MORE;
      r = parse_inline(p, buf, eol);
      if (r != 0)
        return r;
      return done(p, p->scratch, eol + 1, argv, argc, used);

    case ST_COUNT: {
      r = find_eol(p, buf, len, '\r', &eol);
      if (r < 0)
        return fail(p, "too big mbulk count string");
      if (r == 0 || eol + 1 == len) /* the byte after '\r' is needed too */
        return RESP_MORE;
      int64_t n;
      if (!parse_ll(buf + 1, eol - 1, &n) || n > (int64_t)p->max_args)
        return fail(p, "invalid multibulk length");
      if (n <= 0)
        return done(p, buf, eol + 2, argv, argc, used);
      p->nargs = n;
      p->pos = eol + 2;
      p->bulk = -1;
      p->state = ST_HDR;
      break;
    }

    case ST_HDR: {
      size_t at = (size_t)p->pos;
      r = find_eol(p, buf, len, '\r', &eol);
      if (r < 0)
        return fail(p, "too big bulk count string");
      if (r == 0 || eol + 1 == len)
        return RESP_MORE;
      if (buf[at] != '$') {
        char c = buf[at];
        if (c == '\r' || c == '\n' || c == '\0')
          c = ' ';
        snprintf(p->err, sizeof p->err,
                 "Protocol error: expected '$', got '%c'", c);
        p->state = ST_ERROR;
        return RESP_ERROR;
      }
      int64_t n;
      if (!parse_ll(buf + at + 1, eol - at - 1, &n) || n < 0 ||
          (uint64_t)n > p->max_bulk)
        return fail(p, "invalid bulk length");
      /* an offset past SIZE_MAX cannot be buffered (32-bit hosts) */
      if ((uint64_t)n > SIZE_MAX - 2 - (eol + 2))
        return fail(p, "invalid bulk length");
      if (grow(p) != 0)
        return RESP_NOMEM; /* nothing consumed: the call can be retried */
      p->offs[p->argc] = eol + 2;
      p->lens[p->argc] = (uint64_t)n;
      p->pos = eol + 2;
      p->bulk = n;
      p->state = ST_BULK;
      break;
    }

    case ST_BULK: {
      /* the payload is not looked at: only where it ends matters */
      size_t end = (size_t)p->pos + (size_t)p->bulk + 2;
      if (len < end) {
        *need = end;
        return RESP_MORE;
      }
      p->argc++;
      p->pos = end;
      p->bulk = -1;
      if ((int64_t)p->argc == p->nargs)
        return done(p, buf, end, argv, argc, used);
      p->state = ST_HDR;
      break;
    }

    default: /* ST_ERROR */
      return RESP_ERROR;
    }
  }
}
