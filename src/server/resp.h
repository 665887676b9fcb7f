/*
 * resp.h - RESP2 request parsing (the Redis protocol), as the daemon reads
 * it from a client: multibulk commands ("*N\r\n$L\r\nbytes\r\n"...) and
 * inline commands (a line of words, as typed into telnet).
 *
 * The parser is incremental and owns no memory beyond its argument array.
 * The caller keeps the bytes of the command being parsed, starting at the
 * command's first byte, across calls (it may move them, e.g. compact its
 * buffer: the parser keeps offsets, not pointers), and passes them again
 * with whatever arrived since.  Work already done is not repeated: a large
 * bulk arriving in many reads costs one header parse, and a command of many
 * arguments is walked once.
 *
 * Errors use Redis's wording ("Protocol error: ..."); after an error the
 * connection is to be answered with it and closed (the stream cannot be
 * resynchronised), as Redis does.
 */
#ifndef CASCADE_RESP_H
#define CASCADE_RESP_H

#include <stddef.h>
#include <stdint.h>

/* Defaults of the limits (Redis's). */
#define RESP_MAX_BULK_DEFAULT (UINT64_C(512) << 20) /* proto-max-bulk-len */
#define RESP_MAX_ARGS_DEFAULT (1024 * 1024)         /* arguments a command */
#define RESP_MAX_INLINE (64 * 1024)  /* an inline line, and a header line */

typedef struct resp_arg {
  const char *p; /* into the caller's buffer; valid until it changes */
  size_t len;
} resp_arg;

typedef struct resp_parser {
  /* limits, set by the caller (resp_init sets the defaults) */
  uint64_t max_bulk; /* longest bulk string accepted */
  uint32_t max_args; /* most arguments in one command */
  /* private state */
  int state;
  uint64_t pos;        /* bytes of the command parsed so far */
  int64_t nargs;       /* multibulk: arguments declared */
  int64_t bulk;        /* length of the bulk being read, -1: its header */
  size_t argc;         /* arguments complete */
  size_t cap;          /* entries of offs/argv */
  uint64_t *offs;      /* per argument: offset from the command's start */
  uint64_t *lens;      /* per argument: length */
  resp_arg *argv;      /* filled on RESP_DONE */
  char *scratch;       /* inline commands: the unquoted arguments */
  size_t scratch_cap;
  char err[128];       /* on RESP_ERROR */
} resp_parser;

enum {
  RESP_ERROR = -1, /* malformed: p->err says why; close after replying */
  RESP_MORE = 0,   /* incomplete: call again with more bytes */
  RESP_DONE = 1,   /* one command parsed */
  RESP_NOMEM = -2, /* the argument array could not grow */
};

/* Initialise with the default limits.  Cannot fail. */
void resp_init(resp_parser *p);
/* Free the argument array. */
void resp_fini(resp_parser *p);

/*
 * Parse the command starting at buf[0] (len bytes available).
 *   RESP_DONE:  *argv / *argc are the arguments (pointers into buf, or for
 *               an inline command into the parser's scratch; valid until
 *               the next call or until buf changes; argc may
 *               be 0 for an empty command - "*0\r\n" or a blank inline line
 *               - which the caller skips), *used the command's length in
 *               bytes.  The parser is reset for the next command.
 *   RESP_MORE:  *need is the total length the command needs at least (so a
 *               caller can grow its buffer once for a large bulk), or 0 if
 *               not known yet.  Call again with the same bytes plus more.
 *   RESP_ERROR: p->err holds the Redis-style message (without "-" / CRLF).
 *   RESP_NOMEM: out of memory.
 * Limits: a multibulk count over max_args, a bulk length over max_bulk, an
 * inline line or a header line over RESP_MAX_INLINE without its CRLF are
 * errors ("Protocol error: invalid multibulk length" / "invalid bulk length"
 * / "too big inline request" / "too big mbulk count string" / "too big bulk
 * count string").  Inline commands split on spaces and tabs, with "..." and
 * '...' quoting and escapes as Redis's sdssplitargs does ("unbalanced quotes
 * in request"); a line ends at "\n" (a "\r" before it is dropped).
 */
int resp_parse(resp_parser *p, const char *buf, size_t len, resp_arg **argv,
               size_t *argc, size_t *used, size_t *need);

/* Reset to the start of a command (drop a partial parse). */
void resp_reset(resp_parser *p);

#endif /* CASCADE_RESP_H */
