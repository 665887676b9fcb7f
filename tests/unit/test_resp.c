/*
 * test_resp.c - the RESP2 request parser (src/server/resp.c): multibulk and
 * inline commands, pipelining, every way of splitting a command across
 * reads (and moving the buffer in between), Redis's error texts and limits,
 * and that a client's declared lengths never make the parser allocate or
 * read ahead of the bytes that arrived.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server/resp.h"

/* ---- helpers ----------------------------------------------------------- */

/* An expected argument: bytes and length (arguments may hold NULs). */
typedef struct {
  const char *s;
  size_t n;
} exp_arg;
#define A(lit) ((exp_arg){lit, sizeof(lit) - 1})
#define S(lit) lit, sizeof(lit) - 1

/* What one resp_parse call gave, with the arguments copied out. */
typedef struct {
  int rc;
  size_t argc, used, need;
  char args[4096]; /* each argument: its length (size_t), then its bytes */
  size_t args_len;
  char err[128];
} result;

static void capture(result *r, int rc, const resp_parser *p, resp_arg *argv,
                    size_t argc, size_t used, size_t need) {
  memset(r, 0, sizeof *r);
  r->rc = rc;
  r->argc = argc;
  r->used = used;
  r->need = need;
  for (size_t i = 0; i < argc; i++) {
    assert_true(r->args_len + sizeof(size_t) + argv[i].len <= sizeof r->args);
    memcpy(r->args + r->args_len, &argv[i].len, sizeof(size_t));
    r->args_len += sizeof(size_t);
    memcpy(r->args + r->args_len, argv[i].p, argv[i].len);
    r->args_len += argv[i].len;
  }
  if (rc == RESP_ERROR)
    memcpy(r->err, p->err, sizeof r->err);
}

static void assert_same(const result *a, const result *b) {
  assert_int_equal(a->rc, b->rc);
  assert_int_equal(a->argc, b->argc);
  assert_int_equal(a->used, b->used);
  assert_int_equal(a->need, b->need);
  assert_int_equal(a->args_len, b->args_len);
  assert_memory_equal(a->args, b->args, a->args_len);
  assert_string_equal(a->err, b->err);
}

/* Parse buf[0..len) in one call with a fresh parser. */
static result one_shot(const char *buf, size_t len) {
  resp_parser p;
  resp_init(&p);
  resp_arg *argv;
  size_t argc, used, need;
  int rc = resp_parse(&p, buf, len, &argv, &argc, &used, &need);
  result r;
  capture(&r, rc, &p, argv, argc, used, need);
  resp_fini(&p);
  return r;
}

/* Parse and check a complete command's arguments. */
static void expect_cmd(resp_parser *p, const char *buf, size_t len,
                       size_t want_used, const exp_arg *want, size_t nwant) {
  resp_arg *argv;
  size_t argc, used, need;
  int rc = resp_parse(p, buf, len, &argv, &argc, &used, &need);
  if (rc == RESP_ERROR)
    fail_msg("unexpected error: %s", p->err);
  assert_int_equal(rc, RESP_DONE);
  assert_int_equal(used, want_used);
  assert_int_equal(argc, nwant);
  for (size_t i = 0; i < nwant; i++) {
    assert_int_equal(argv[i].len, want[i].n);
    assert_memory_equal(argv[i].p, want[i].s, want[i].n);
  }
}

static void expect_error(const char *buf, size_t len, const char *msg) {
  resp_parser p;
  resp_init(&p);
  resp_arg *argv;
  size_t argc, used, need;
  assert_int_equal(resp_parse(&p, buf, len, &argv, &argc, &used, &need),
                   RESP_ERROR);
  assert_string_equal(p.err, msg);
  /* sticky: the stream cannot be resynchronised */
  assert_int_equal(resp_parse(&p, buf, len, &argv, &argc, &used, &need),
                   RESP_ERROR);
  assert_string_equal(p.err, msg);
  resp_fini(&p);
}

static int parse1(resp_parser *p, const char *buf, size_t len, size_t *need) {
  resp_arg *argv;
  size_t argc, used;
  return resp_parse(p, buf, len, &argv, &argc, &used, need);
}

static int is_inside(const void *x, const void *base, size_t len) {
  const char *c = x, *b = base;
  return c >= b && c <= b + len;
}

/* A multibulk command with a binary argument, and an inline one. */
static const char mb_cmd[] = "*4\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n"
                             "$8\r\n\r\n\0*$\r\n\n\r\n$0\r\n\r\n";
static const char il_cmd[] = "SET \"a\\x41\\n b\" 'c\\'d' e\r\n";

/* ---- tests ------------------------------------------------------------- */

static void test_multibulk(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  static const char buf[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
  exp_arg want[] = {A("SET"), A("k"), A("hello")};
  expect_cmd(&p, buf, sizeof buf - 1, sizeof buf - 1, want, 3);

  /* the arguments point into the caller's buffer, not copies */
  resp_arg *argv;
  size_t argc, used, need;
  assert_int_equal(
      resp_parse(&p, buf, sizeof buf - 1, &argv, &argc, &used, &need),
      RESP_DONE);
  assert_ptr_equal(argv[0].p, buf + 8);
  assert_ptr_equal(argv[2].p, buf + 24);
  resp_fini(&p);
}

static void test_inline(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  exp_arg want[] = {A("SET"), A("k"), A("v")};
  expect_cmd(&p, S("SET k v\r\n"), 9, want, 3);
  expect_cmd(&p, S("SET k v\n"), 8, want, 3);
  expect_cmd(&p, S("  SET\tk \t v  \r\n"), 15, want, 3);

  /* inline arguments live in the parser's scratch, not in buf */
  static const char buf[] = "\"PING\"\n";
  resp_arg *argv;
  size_t argc, used, need;
  assert_int_equal(
      resp_parse(&p, buf, sizeof buf - 1, &argv, &argc, &used, &need),
      RESP_DONE);
  assert_int_equal(argc, 1);
  assert_false(is_inside(argv[0].p, buf, sizeof buf));
  assert_true(is_inside(argv[0].p, p.scratch, p.scratch_cap));
  assert_memory_equal(argv[0].p, "PING", 4);
  resp_fini(&p);
}

static void test_pipeline(void **state) {
  (void)state;
  static const char buf[] = "*1\r\n$4\r\nPING\r\n"           /* 14 */
                            "ECHO hi\r\n"                    /* 9 */
                            "*0\r\n"                         /* 4 */
                            "\r\n"                           /* 2 */
                            "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" /* 20 */
                            "*2\r\n$3\r\nGE";                /* partial */
  resp_parser p;
  resp_init(&p);
  size_t off = 0, len = sizeof buf - 1;
  exp_arg c1[] = {A("PING")}, c2[] = {A("ECHO"), A("hi")},
          c5[] = {A("GET"), A("k")};
  expect_cmd(&p, buf + off, len - off, 14, c1, 1);
  off += 14;
  expect_cmd(&p, buf + off, len - off, 9, c2, 2);
  off += 9;
  expect_cmd(&p, buf + off, len - off, 4, NULL, 0);
  off += 4;
  expect_cmd(&p, buf + off, len - off, 2, NULL, 0);
  off += 2;
  expect_cmd(&p, buf + off, len - off, 20, c5, 2);
  off += 20;
  size_t need = 99;
  assert_int_equal(parse1(&p, buf + off, len - off, &need), RESP_MORE);
  /* the partial bulk's length is known: 4+4+3+2 bytes in all */
  assert_int_equal(need, 13);
  resp_fini(&p);
}

/* Feeding prefixes of growing length to one parser gives the one-shot
 * result at the end and RESP_MORE before; with move, each call gets a fresh
 * copy of the bytes (the old one freed: a kept pointer would be caught). */
static void feed_bytewise(const char *cmd, size_t n, int move) {
  result whole = one_shot(cmd, n), got;
  assert_int_equal(whole.used, n);
  resp_parser p;
  resp_init(&p);
  resp_arg *argv;
  size_t argc, used, need;
  char *copy = NULL;
  for (size_t k = 0; k <= n; k++) {
    const char *b = cmd;
    if (move) {
      free(copy);
      copy = malloc(k ? k : 1);
      assert_non_null(copy);
      memcpy(copy, cmd, k);
      b = copy;
    }
    int rc = resp_parse(&p, b, k, &argv, &argc, &used, &need);
    if (k < n) {
      assert_int_equal(rc, RESP_MORE);
      assert_true(need == 0 || (need > k && need <= n));
    } else {
      capture(&got, rc, &p, argv, argc, used, need);
      assert_same(&got, &whole);
    }
  }
  free(copy);
  resp_fini(&p);
}

static void test_split_bytewise(void **state) {
  (void)state;
  feed_bytewise(mb_cmd, sizeof mb_cmd - 1, 0);
  feed_bytewise(il_cmd, sizeof il_cmd - 1, 0);
}

static void test_split_moved_buffer(void **state) {
  (void)state;
  feed_bytewise(mb_cmd, sizeof mb_cmd - 1, 1);
  feed_bytewise(il_cmd, sizeof il_cmd - 1, 1);
}

/* Every split into two reads: the first k bytes, then all. */
static void test_split_every_point(void **state) {
  (void)state;
  const char *cmds[] = {mb_cmd, il_cmd};
  size_t lens[] = {sizeof mb_cmd - 1, sizeof il_cmd - 1};
  for (size_t c = 0; c < 2; c++) {
    result whole = one_shot(cmds[c], lens[c]), got;
    assert_int_equal(whole.rc, RESP_DONE);
    for (size_t k = 0; k < lens[c]; k++) {
      resp_parser p;
      resp_init(&p);
      resp_arg *argv;
      size_t argc, used, need;
      assert_int_equal(resp_parse(&p, cmds[c], k, &argv, &argc, &used, &need),
                       RESP_MORE);
      int rc = resp_parse(&p, cmds[c], lens[c], &argv, &argc, &used, &need);
      capture(&got, rc, &p, argv, argc, used, need);
      assert_same(&got, &whole);
      resp_fini(&p);
    }
  }
}

static void test_binary_and_empty_bulks(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  exp_arg want[] = {A("SET"), A("k\0y"), A("\r\n\0*$\r\n\n"), A("")};
  expect_cmd(&p, mb_cmd, sizeof mb_cmd - 1, sizeof mb_cmd - 1, want, 4);
  exp_arg empty[] = {A("")};
  expect_cmd(&p, S("*1\r\n$0\r\n\r\n"), 10, empty, 1);
  resp_fini(&p);
}

static void test_empty_commands(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  expect_cmd(&p, S("*0\r\n"), 4, NULL, 0);
  expect_cmd(&p, S("*-1\r\n"), 5, NULL, 0);
  expect_cmd(&p, S("*-100\r\nPING\r\n"), 7, NULL, 0);
  expect_cmd(&p, S("\r\n"), 2, NULL, 0);
  expect_cmd(&p, S("\n"), 1, NULL, 0);
  expect_cmd(&p, S(" \t \v\f\r\n"), 7, NULL, 0);
  /* empty quoted arguments are dropped, as processInlineBuffer does */
  expect_cmd(&p, S("\"\" ''\n"), 6, NULL, 0);
  size_t need;
  assert_int_equal(parse1(&p, "", 0, &need), RESP_MORE);
  assert_int_equal(parse1(&p, "*0\r", 3, &need), RESP_MORE);
  assert_int_equal(parse1(&p, "*0", 2, &need), RESP_MORE);
  resp_fini(&p);
}

static void test_inline_quoting(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  exp_arg w1[] = {A("SET"), A("a b"), A("c d")};
  expect_cmd(&p, S("SET \"a b\" 'c d'\n"), 16, w1, 3);
  exp_arg w2[] = {A("AJ\n\r\t\b\a\\\"zq")};
  expect_cmd(&p, S("\"\\x41\\x4a\\n\\r\\t\\b\\a\\\\\\\"z\\q\"\n"), 28, w2, 1);
  /* \x without two hex digits is an escaped 'x' */
  exp_arg w3[] = {A("xZZ"), A("x4"), A("O")};
  expect_cmd(&p, S("\"\\xZZ\" \"\\x4\" \"\\x4F\"\n"), 20, w3, 3);
  /* single quotes: only \' is an escape */
  exp_arg w4[] = {A("it's"), A("a\\nb")};
  expect_cmd(&p, S("'it\\'s' 'a\\nb'\n"), 15, w4, 2);
  /* a quote may open inside a word; empty arguments are dropped */
  exp_arg w5[] = {A("ab c"), A("x")};
  expect_cmd(&p, S("a\"b c\" \"\" x ''\n"), 15, w5, 2);
  /* any blank may follow a closing quote; a mid-line \r separates */
  exp_arg w6[] = {A("a"), A("b"), A("x"), A("y")};
  expect_cmd(&p, S("\"a\"\tb x\ry\r\n"), 11, w6, 4);
  /* \v and \f are skipped between words but are part of a bare word */
  exp_arg w7[] = {A("a\vb\f"), A("c")};
  expect_cmd(&p, S("\va\vb\f c\n"), 8, w7, 2);
  /* a NUL is an ordinary byte (Redis would wait for more input) */
  exp_arg w8[] = {A("a\0b"), A("c")};
  expect_cmd(&p, S("a\0b c\n"), 6, w8, 2);
  /* quotes hold blanks and \r */
  exp_arg w9[] = {A(" \r\t ")};
  expect_cmd(&p, S("\" \r\t \"\n"), 7, w9, 1);
  resp_fini(&p);
}

static void test_errors(void **state) {
  (void)state;
  const char *mbulk = "Protocol error: invalid multibulk length";
  expect_error(S("*abc\r\n"), mbulk);
  expect_error(S("*\r\n"), mbulk);
  expect_error(S("*+1\r\n"), mbulk);
  expect_error(S("* 1\r\n"), mbulk);
  expect_error(S("*1 \r\n"), mbulk);
  expect_error(S("*01\r\n"), mbulk);
  expect_error(S("*-0\r\n"), mbulk);
  expect_error(S("*-\r\n"), mbulk);
  expect_error(S("*1\0\r\n"), mbulk);
  expect_error(S("*99999999999999999999\r\n"), mbulk);
  expect_error(S("*-9223372036854775809\r\n"), mbulk);
  expect_error(S("*1048577\r\n"), mbulk);

  const char *bulk = "Protocol error: invalid bulk length";
  expect_error(S("*1\r\n$abc\r\n"), bulk);
  expect_error(S("*1\r\n$\r\n"), bulk);
  expect_error(S("*1\r\n$-1\r\n"), bulk);
  expect_error(S("*1\r\n$+1\r\n"), bulk);
  expect_error(S("*1\r\n$01\r\n"), bulk);
  expect_error(S("*1\r\n$ 1\r\n"), bulk);
  expect_error(S("*1\r\n$9223372036854775808\r\n"), bulk);
  expect_error(S("*1\r\n$536870913\r\n"), bulk);
  /* the second header is checked as carefully as the first */
  expect_error(S("*2\r\n$1\r\na\r\n$x\r\n"), bulk);

  expect_error(S("*1\r\nX3\r\nfoo\r\n"),
               "Protocol error: expected '$', got 'X'");
  expect_error(S("*2\r\n$1\r\na\r\n*1\r\n"),
               "Protocol error: expected '$', got '*'");
  /* a CR (an empty line) is shown as a space, as Redis's replies do */
  expect_error(S("*1\r\n\r\n"), "Protocol error: expected '$', got ' '");

  const char *unbal = "Protocol error: unbalanced quotes in request";
  expect_error(S("SET \"abc\r\n"), unbal);
  expect_error(S("SET 'abc\n"), unbal);
  expect_error(S("SET \"a\"b\n"), unbal);
  expect_error(S("SET 'a'b\n"), unbal);
  expect_error(S("SET \"abc\\\"\n"), unbal);
  expect_error(S("SET \"abc\\\n"), unbal);
  expect_error(S("SET 'abc\\'\n"), unbal);

  /* after resp_reset the parser works again */
  resp_parser p;
  resp_init(&p);
  size_t need;
  assert_int_equal(parse1(&p, S("*x\r\n"), &need), RESP_ERROR);
  resp_reset(&p);
  assert_string_equal(p.err, "");
  exp_arg want[] = {A("PING")};
  expect_cmd(&p, S("PING\n"), 5, want, 1);
  resp_fini(&p);
}

/* A header or inline line without its terminator is refused once it holds
 * more than RESP_MAX_INLINE bytes - not before. */
static void test_too_big_lines(void **state) {
  (void)state;
  size_t n = RESP_MAX_INLINE + 16;
  char *buf = malloc(n);
  assert_non_null(buf);
  struct {
    const char *prefix;
    const char *msg;
  } cases[] = {
      {"*", "Protocol error: too big mbulk count string"},
      {"*1\r\n$", "Protocol error: too big bulk count string"},
      {"*1\r\nX", "Protocol error: too big bulk count string"},
      {"GET ", "Protocol error: too big inline request"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t pre = strlen(cases[c].prefix);
    size_t line = c == 0 ? 0 : c == 3 ? 0 : 4; /* where the line starts */
    memcpy(buf, cases[c].prefix, pre);
    memset(buf + pre, '1', n - pre);
    resp_parser p;
    resp_init(&p);
    size_t need;
    /* fed in pieces: waits up to RESP_MAX_INLINE bytes of the line */
    for (size_t k = 1; k <= line + RESP_MAX_INLINE; k += 4099)
      assert_int_equal(parse1(&p, buf, k, &need), RESP_MORE);
    assert_int_equal(parse1(&p, buf, line + RESP_MAX_INLINE, &need), RESP_MORE);
    assert_int_equal(parse1(&p, buf, line + RESP_MAX_INLINE + 1, &need),
                     RESP_ERROR);
    assert_string_equal(p.err, cases[c].msg);
    resp_fini(&p);
    /* whole, with a terminator too late: the same */
    buf[n - 2] = '\r';
    buf[n - 1] = '\n';
    expect_error(buf, n, cases[c].msg);
  }

  /* an inline line of exactly RESP_MAX_INLINE bytes is accepted */
  memset(buf, 'a', RESP_MAX_INLINE);
  buf[RESP_MAX_INLINE] = '\n';
  resp_parser p;
  resp_init(&p);
  resp_arg *argv;
  size_t argc, used, need;
  assert_int_equal(
      resp_parse(&p, buf, RESP_MAX_INLINE + 1, &argv, &argc, &used, &need),
      RESP_DONE);
  assert_int_equal(argc, 1);
  assert_int_equal(argv[0].len, RESP_MAX_INLINE);
  assert_int_equal(used, RESP_MAX_INLINE + 1);
  resp_fini(&p);
  free(buf);
}

static void test_limits(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  assert_int_equal(p.max_bulk, RESP_MAX_BULK_DEFAULT);
  assert_int_equal(p.max_args, RESP_MAX_ARGS_DEFAULT);
  size_t need;
  /* the defaults themselves are accepted */
  static const char dflt[] = "*1048576\r\n$536870912\r\n";
  assert_int_equal(parse1(&p, S(dflt), &need), RESP_MORE);
  assert_int_equal(need, sizeof dflt - 1 + 536870912 + 2);
  resp_reset(&p);

  p.max_bulk = 5;
  p.max_args = 2;
  exp_arg want[] = {A("hello"), A("")};
  expect_cmd(&p, S("*2\r\n$5\r\nhello\r\n$0\r\n\r\n"), 21, want, 2);
  assert_int_equal(parse1(&p, S("*1\r\n$6\r\n"), &need), RESP_ERROR);
  assert_string_equal(p.err, "Protocol error: invalid bulk length");
  resp_reset(&p);
  assert_int_equal(parse1(&p, S("*3\r\n"), &need), RESP_ERROR);
  assert_string_equal(p.err, "Protocol error: invalid multibulk length");
  resp_reset(&p);

  p.max_args = 0;
  assert_int_equal(parse1(&p, S("*1\r\n"), &need), RESP_ERROR);
  resp_reset(&p);
  expect_cmd(&p, S("*0\r\n"), 4, NULL, 0);
  resp_fini(&p);
}

static void test_need(void **state) {
  (void)state;
  const size_t big = 1000000;
  static const char hdr[] = "*2\r\n$3\r\nSET\r\n$1000000\r\n";
  size_t h = sizeof hdr - 1, total = h + big + 2;
  char *buf = malloc(total);
  assert_non_null(buf);
  memcpy(buf, hdr, h);
  memset(buf + h, 'v', big);
  memcpy(buf + h + big, "\r\n", 2);

  resp_parser p;
  resp_init(&p);
  size_t need = 99;
  /* unknown until the bulk's header is complete */
  assert_int_equal(parse1(&p, buf, 5, &need), RESP_MORE);
  assert_int_equal(need, 0);
  assert_int_equal(parse1(&p, buf, 10, &need), RESP_MORE);
  assert_int_equal(need, 13); /* the 3-byte bulk "SET" */
  assert_int_equal(parse1(&p, buf, h - 1, &need), RESP_MORE);
  assert_int_equal(need, 0);
  size_t ks[] = {h, h + 1, h + big / 2, h + big, total - 1};
  for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    need = 0;
    assert_int_equal(parse1(&p, buf, ks[i], &need), RESP_MORE);
    assert_int_equal(need, total);
  }
  resp_arg *argv;
  size_t argc, used;
  assert_int_equal(resp_parse(&p, buf, total, &argv, &argc, &used, &need),
                   RESP_DONE);
  assert_int_equal(argc, 2);
  assert_int_equal(argv[1].len, big);
  assert_ptr_equal(argv[1].p, buf + h);
  assert_int_equal(used, total);
  assert_int_equal(need, 0);
  resp_fini(&p);
  free(buf);
}

/* A declared count or length is a promise, not bytes: the arrays grow with
 * the arguments that arrived, and a payload is not read before it is
 * handed over (not even then: the caller gets a pointer). */
static void test_huge_declared(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  size_t need;
  static const char many[] = "*1000000\r\n$1\r\na\r\n$1\r\nb\r\n$0\r\n";
  assert_int_equal(parse1(&p, S(many), &need), RESP_MORE);
  assert_true(p.cap >= 3);
  assert_true(p.cap <= 16);

  /* a million empty arguments: the arrays grow as they arrive */
  static const char arg[] = "$0\r\n\r\n";
  size_t n = 1000000, len = 10 + n * 6;
  char *buf = malloc(len);
  assert_non_null(buf);
  memcpy(buf, "*1000000\r\n", 10);
  for (size_t i = 0; i < n; i++)
    memcpy(buf + 10 + i * 6, arg, 6);
  resp_reset(&p);
  assert_int_equal(parse1(&p, buf, 10 + 1000 * 6, &need), RESP_MORE);
  assert_true(p.cap >= 1000);
  assert_true(p.cap <= 2048);
  resp_arg *argv;
  size_t argc, used;
  assert_int_equal(resp_parse(&p, buf, len, &argv, &argc, &used, &need),
                   RESP_DONE);
  assert_int_equal(argc, n);
  assert_int_equal(used, len);
  assert_ptr_equal(argv[n - 1].p, buf + len - 2);
  free(buf);

  /* the payload and its CRLF sit on a page that cannot be read: any look
   * at them would crash */
  long pg = sysconf(_SC_PAGESIZE);
  assert_true(pg > 0);
  size_t page = (size_t)pg, plen = 3 * page - 2;
  char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  char hdr[64];
  int hl = snprintf(hdr, sizeof hdr, "*2\r\n$3\r\nGET\r\n$%zu\r\n", plen);
  assert_true(hl > 0);
  char *cmd = m + page - (size_t)hl;
  memcpy(cmd, hdr, (size_t)hl);
  assert_int_equal(mprotect(m + page, 3 * page, PROT_NONE), 0);
  resp_reset(&p);
  size_t total = (size_t)hl + plen + 2;
  for (size_t k = 0; k < total; k += 1000) {
    int rc = parse1(&p, cmd, k, &need);
    assert_int_equal(rc, RESP_MORE);
    assert_true(need == 0 || need == total);
  }
  assert_int_equal(resp_parse(&p, cmd, total, &argv, &argc, &used, &need),
                   RESP_DONE);
  assert_int_equal(argc, 2);
  assert_memory_equal(argv[0].p, "GET", 3);
  assert_ptr_equal(argv[1].p, m + page);
  assert_int_equal(argv[1].len, plen);
  assert_int_equal(used, total);
  munmap(m, 4 * page);
  resp_fini(&p);
}

/* An incomplete line is searched once: bytes searched by an earlier call
 * are made unreadable before the next, which must look only at new ones
 * (and then refuse the line as too long). */
static void test_lines_scanned_once(void **state) {
  (void)state;
  long pg = sysconf(_SC_PAGESIZE);
  assert_true(pg > 0);
  size_t page = (size_t)pg;
  size_t size = (RESP_MAX_INLINE / page + 2) * page;
  const char *first[] = {"*", "GET "};
  const char *msg[] = {"Protocol error: too big mbulk count string",
                       "Protocol error: too big inline request"};
  for (int c = 0; c < 2; c++) {
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    memset(m, '1', size);
    memcpy(m, first[c], strlen(first[c]));
    resp_parser p;
    resp_init(&p);
    size_t need;
    assert_int_equal(parse1(&p, m, 2 * page, &need), RESP_MORE);
    assert_int_equal(mprotect(m, 2 * page, PROT_NONE), 0);
    assert_int_equal(parse1(&p, m, 3 * page, &need), RESP_MORE);
    assert_int_equal(mprotect(m + 2 * page, page, PROT_NONE), 0);
    assert_int_equal(parse1(&p, m, RESP_MAX_INLINE + 1, &need), RESP_ERROR);
    assert_string_equal(p.err, msg[c]);
    resp_fini(&p);
    munmap(m, size);
  }
}

/* Redis skips the byte after a header's '\r' and the two bytes after a
 * payload without looking at them; so does this parser. */
static void test_lax_terminators(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  exp_arg want[] = {A("ab"), A("c")};
  expect_cmd(&p, S("*2\rX$2\rYabZZ$1\r\ncQQ"), 19, want, 2);
  resp_fini(&p);
}

/* Once warm, commands of the same shape do not allocate. */
static void test_no_alloc_when_warm(void **state) {
  (void)state;
  resp_parser p;
  resp_init(&p);
  static const char mb[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
  static const char il[] = "SET \"k\" v\r\n";
  exp_arg want[] = {A("SET"), A("k"), A("v")};
  expect_cmd(&p, S(mb), sizeof mb - 1, want, 3);
  expect_cmd(&p, S(il), sizeof il - 1, want, 3);
  uint64_t *offs = p.offs;
  resp_arg *argv = p.argv;
  char *scratch = p.scratch;
  size_t cap = p.cap, scap = p.scratch_cap;
  for (int i = 0; i < 100; i++) {
    expect_cmd(&p, S(mb), sizeof mb - 1, want, 3);
    expect_cmd(&p, S(il), sizeof il - 1, want, 3);
  }
  assert_ptr_equal(p.offs, offs);
  assert_ptr_equal(p.argv, argv);
  assert_ptr_equal(p.scratch, scratch);
  assert_int_equal(p.cap, cap);
  assert_int_equal(p.scratch_cap, scap);
  /* resp_fini may be followed by more use, or by another resp_fini */
  resp_fini(&p);
  expect_cmd(&p, S(mb), sizeof mb - 1, want, 3);
  resp_fini(&p);
  resp_fini(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multibulk),
      cmocka_unit_test(test_inline),
      cmocka_unit_test(test_pipeline),
      cmocka_unit_test(test_split_bytewise),
      cmocka_unit_test(test_split_moved_buffer),
      cmocka_unit_test(test_split_every_point),
      cmocka_unit_test(test_binary_and_empty_bulks),
      cmocka_unit_test(test_empty_commands),
      cmocka_unit_test(test_inline_quoting),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_too_big_lines),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_need),
      cmocka_unit_test(test_huge_declared),
      cmocka_unit_test(test_lines_scanned_once),
      cmocka_unit_test(test_lax_terminators),
      cmocka_unit_test(test_no_alloc_when_warm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
