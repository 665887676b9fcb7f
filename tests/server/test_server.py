#!/usr/bin/python3
"""
test_server.py - integration tests of cascaded, the Redis-protocol daemon.

What it checks (each case starts the real daemon binary; no mocks):
  basics        redis-py: GET/SET (EX PX NX XX KEEPTTL GET), MGET/MSET,
                EXISTS, DEL/UNLINK, STRLEN, TTLs (a key really expires),
                DBSIZE, FLUSHDB, INFO sections, CONFIG GET, CLIENT
                SETNAME/GETNAME, HELLO, SELECT, COMMAND COUNT, ECHO, PING,
                Redis's error wording, binary-safe keys and values; a
                refused SET/MSET (value too large) changes nothing.
  vs_redis      the same command list against a real redis-server and
                against cascaded: the replies must be identical (GETRANGE
                with negative indexes, SET options, TTLs, errors).
  lmcache       LMCache's Redis connector pattern (kv_bytes + metadata
                per chunk), byte-exact.
  pipeline      64 x 1 MiB through a redis-py pipeline and one MSET/MGET;
                20 rounds of 64 pipelined 1 MiB GETs never stall.
  cascade_cmds  CASCADE.PUT/MATCH/PIN/UNPIN/STATS/TOUCH (a pinned key
                survives eviction; touches count as hits; SHMINDEX only on
                the Unix socket).
  auth          namespaces and passwords: NOAUTH, WRONGPASS, isolation,
                per-namespace DBSIZE/FLUSHDB, HELLO 2 AUTH; an
                unauthenticated client cannot make the daemon buffer a
                large value; a namespace's client cannot SHUTDOWN the
                daemon (the default namespace can, exit 0); pins belong to
                a namespace; --bind 0.0.0.0 without a password is refused.
  disk          --disk-dir restart keeps every value byte-exact (and TTLs);
                a second daemon on the same directory fails to start, and
                leaves the running daemon's Unix socket in place.
  big_value     one 160 MiB SET while another client PINGs: latency stays
                low; the value reads back byte-exact.
  limits        proto-max-bulk-len, maxclients, timeout,
                client-output-buffer-limit: only the offending client goes.
  bad_input     raw sockets: seeded random bytes, truncated frames, huge
                declared lengths, half-closed connections (commands sent
                before the half-close are still executed and answered),
                inline commands; the daemon stays up and loses nothing.
  load          32 concurrent clients for ~5 s, verified bytes, RSS bound.
  signals       SIGHUP reopens the log file; --daemonize + --pidfile.
  metrics       Prometheus endpoint: /metrics 200, other paths 404.

Every daemon is stopped with SIGTERM; it must exit 0 and its stderr must
hold no sanitizer report.

Usage: /usr/bin/python3 test_server.py [/path/to/cascaded] [case...]
       (or CASCADED=/path/to/cascaded).  Exit 0 pass, 1 fail, 77 skip.
       Cases are named on the command line to run a subset (ctest runs
       the groups separately to stay under a minute each).
"""
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import redis
except ImportError:
    print("SKIP: python3 module 'redis' (python3-redis) is not installed")
    sys.exit(77)

ARGS = sys.argv[1:]
BIN = os.environ.get("CASCADED")
if ARGS and not ARGS[0].startswith("-") and os.sep in ARGS[0]:
    BIN = ARGS.pop(0)
if not BIN or not os.access(BIN, os.X_OK):
    print("SKIP: cascaded binary not given (argv[1] or $CASCADED): %r" % BIN)
    sys.exit(77)
BIN = os.path.abspath(BIN)

with open(BIN, "rb") as _f:
    SANITIZED = b"AddressSanitizer" in _f.read()
# ASan keeps freed memory in a quarantine (256 MiB by default) and adds
# shadow memory: RSS bounds get this much more under it.
ASAN_SLACK = (512 << 20) if SANITIZED else 0
SAN_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
             "runtime error:", "ThreadSanitizer")

# Disk-backed scratch (the disk tier wants a real file system, not tmpfs).
DISK_BASE = "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Daemon:
    """The real cascaded on a free loopback port and a Unix socket."""

    def __init__(self, *args, dram="64m", threads=2, tcp=True, wait=True,
                 tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="cascaded-it-")
        self.own_tmp = tmp is None
        self.sock = os.path.join(self.tmp, "c.sock")
        self.args = list(args)
        self.dram = dram
        self.threads = threads
        self.proc = None
        self.port = None
        self.tcp = tcp
        self.start(wait=wait)

    def cmdline(self):
        a = [BIN, "--port", str(self.port), "--unixsocket", self.sock,
             "--threads", str(self.threads)]
        if self.dram:
            a += ["--dram", self.dram]
        return a + self.args

    def start(self, wait=True):
        for _ in range(3):  # the free port may be taken in between
            self.port = free_port() if self.tcp else 0
            self.errpath = os.path.join(self.tmp, "stderr.%d" % time.time_ns())
            self.err = open(self.errpath, "wb")
            self.proc = subprocess.Popen(self.cmdline(), stdout=self.err,
                                         stderr=self.err,
                                         stdin=subprocess.DEVNULL)
            if not wait:
                return
            if self.wait_ready():
                return
            if "Address already in use" not in self.stderr():
                break
        raise AssertionError("cascaded did not start: rc=%r\n%s"
                             % (self.proc.poll(), self.stderr()[-3000:]))

    def wait_ready(self, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                return False
            try:
                s = socket.create_connection(("127.0.0.1", self.port), 1) \
                    if self.tcp else self.unix_socket()
                s.settimeout(5)
                s.sendall(b"PING\r\n")
                r = s.recv(64)
                s.close()
                if r.startswith(b"+PONG") or r.startswith(b"-NOAUTH"):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def unix_socket(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        return s

    def raw(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout)
        s.settimeout(timeout)
        return s

    def client(self, unix=False, **kw):
        kw.setdefault("socket_timeout", 20)
        if unix:
            return redis.Redis(unix_socket_path=self.sock, **kw)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stderr(self):
        try:
            self.err.flush()
        except Exception:
            pass
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, expect_rc=0):
        """SIGTERM; exit 0 and no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cascaded did not stop within 90 s of "
                                 "SIGTERM\n" + self.stderr()[-3000:])
        self.err.close()
        err = self.stderr()
        for m in SAN_MARKS:
            assert m not in err, "sanitizer report in stderr:\n" + err[-6000:]
        assert rc == expect_rc, "cascaded exit %r (want %r)\n%s" % (
            rc, expect_rc, err[-3000:])
        return err

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.stop()
        finally:
            self.cleanup()
        return False


def run_fail(*args, timeout=60):
    """Run cascaded expecting a failed start; (rc, stderr)."""
    p = subprocess.run([BIN] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


# ---- a minimal RESP reader for raw sockets ---------------------------------

class Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def reply(self):
        ln = self.line()
        t, rest = ln[:1], ln[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            d = self.exact(n + 2)
            assert d[-2:] == b"\r\n", "bulk without CRLF"
            return d[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise AssertionError("bad reply line %r" % ln)


class Err(str):
    pass


class Raw:
    """A raw-socket client: cmd(*args) sends one command, returns the
    reply (an Err for an error reply)."""

    def __init__(self, d, unix=False):
        self.s = d.unix_socket() if unix else d.raw()
        self.s.settimeout(30)
        self.rd = Reader(self.s)

    def cmd(self, *args):
        self.s.sendall(enc(*args))
        return self.rd.reply()

    def close(self):
        self.s.close()


def is_err(rep, *needles):
    assert isinstance(rep, Err), "not an error: %r" % (rep,)
    for n in needles:
        assert n in rep, "error %r lacks %r" % (str(rep), n)
    return True


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def wait_closed(s, timeout=10):
    """True if the peer closes s (EOF or reset) within timeout; data that
    arrives meanwhile is drained."""
    s.settimeout(timeout)
    t0 = time.time()
    try:
        while time.time() - t0 < timeout:
            d = s.recv(1 << 20)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def raises(fn, *needles):
    try:
        r = fn()
    except redis.ResponseError as e:
        for n in needles:
            assert n in str(e), "error %r lacks %r" % (str(e), n)
        return str(e)
    raise AssertionError("no error; got %r (wanted %r)" % (r, needles))


# ---- the runner --------------------------------------------------------------

CASES = []


def case(group):
    def deco(fn):
        CASES.append((group, fn))
        return fn
    return deco


# ---- basics --------------------------------------------------------------------

@case("basics")
def t_get_set_options():
    with Daemon() as d:
        r = d.client()
        assert r.ping() is True
        assert r.get("nope") is None
        assert r.set("k", "v1") is True
        assert r.get("k") == b"v1"
        # NX / XX
        assert r.set("k", "v2", nx=True) is None
        assert r.get("k") == b"v1"
        assert r.set("k", "v2", xx=True) is True
        assert r.get("k") == b"v2"
        assert r.set("fresh", "x", xx=True) is None
        assert r.exists("fresh") == 0
        assert r.set("fresh", "x", nx=True) is True
        # GET option
        assert r.set("k", "v3", get=True) == b"v2"
        assert r.set("absent-get", "a", get=True) is None
        assert r.get("absent-get") == b"a"
        # EX / PX and TTLs
        assert r.set("e", "1", ex=100) is True
        assert 99 <= r.ttl("e") <= 100
        assert r.set("p", "1", px=5000) is True
        assert 4000 < r.pttl("p") <= 5000
        # KEEPTTL keeps it, a plain SET drops it
        assert r.set("e", "2", keepttl=True) is True
        assert 98 <= r.ttl("e") <= 100 and r.get("e") == b"2"
        assert r.set("e", "3") is True
        assert r.ttl("e") == -1
        assert r.ttl("missing") == -2 and r.pttl("missing") == -2
        # bad options
        raises(lambda: r.execute_command("SET", "k", "v", "NX", "XX"),
               "syntax error")
        raises(lambda: r.execute_command("SET", "k", "v", "EX", "0"),
               "invalid expire time in 'set' command")
        raises(lambda: r.execute_command("SET", "k", "v", "EX", "abc"),
               "value is not an integer or out of range")
        raises(lambda: r.execute_command("SET", "k", "v", "EX"),
               "syntax error")
        raises(lambda: r.execute_command("SET", "k", "v", "BOGUS"),
               "syntax error")
        raises(lambda: r.execute_command("SET", "k", "v", "KEEPTTL", "EX",
                                         "5"), "syntax error")
        assert r.get("k") == b"v3", "a failed SET changed the value"


@case("basics")
def t_multi_key_and_ttl():
    with Daemon() as d:
        r = d.client()
        assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
        assert r.mget("a", "b", "x", "c") == [b"1", b"2", None, b"3"]
        assert r.exists("a", "b", "x") == 2
        assert r.exists("a", "a") == 2  # Redis counts repeats
        assert r.strlen("a") == 1 and r.strlen("x") == 0
        assert r.dbsize() == 3
        assert r.delete("a", "x") == 1
        assert r.unlink("b", "c", "b") == 2
        assert r.dbsize() == 0
        raises(lambda: r.execute_command("MSET", "a", "1", "b"),
               "wrong number of arguments for 'mset' command")
        # EXPIRE / PEXPIRE / PERSIST
        r.set("t", "v")
        assert r.expire("t", 100) is True
        assert 99 <= r.ttl("t") <= 100
        assert r.pexpire("t", 50000) is True
        assert 49000 < r.pttl("t") <= 50000
        assert r.persist("t") is True
        assert r.ttl("t") == -1
        assert r.persist("t") is False
        assert r.expire("nope", 10) is False
        assert r.execute_command("EXPIRE", "t", "10", "XX") == 0
        assert r.execute_command("EXPIRE", "t", "10", "NX") == 1
        assert r.execute_command("EXPIRE", "t", "100", "GT") == 1
        assert r.execute_command("EXPIRE", "t", "5", "GT") == 0
        assert r.execute_command("EXPIRE", "t", "5", "LT") == 1
        assert 4 <= r.ttl("t") <= 5
        raises(lambda: r.execute_command("EXPIRE", "t", "5", "NX", "XX"),
               "not compatible")
        # expires for real
        assert r.set("short", "v", px=100) is True
        assert r.get("short") == b"v"
        time.sleep(0.35)
        assert r.get("short") is None
        assert r.exists("short") == 0 and r.ttl("short") == -2
        r.set("short2", "v")
        assert r.pexpire("short2", 100) is True
        time.sleep(0.35)
        assert r.get("short2") is None
        # a negative expire deletes at once
        r.set("neg", "v")
        assert r.expire("neg", -1) is True
        assert r.exists("neg") == 0
        # FLUSHDB
        r.mset({"f%d" % i: "x" for i in range(50)})
        assert r.dbsize() == 51
        assert r.flushdb() is True
        assert r.dbsize() == 0
        raises(lambda: r.execute_command("FLUSHDB", "BOGUS"), "syntax error")


@case("basics")
def t_server_commands():
    with Daemon("--maxclients", "123") as d:
        r = d.client()
        r.set("k1", "v")
        info = r.info("everything")
        for f in ("redis_version", "process_id", "connected_clients",
                  "used_memory", "total_commands_processed", "dram_blocks",
                  "keyspace_hits"):
            assert f in info, "INFO lacks %s" % f
        assert info["process_id"] == d.proc.pid
        assert info["tcp_port"] == d.port
        assert info["maxclients"] == 123
        s = d.raw()
        s.sendall(b"INFO\r\n")
        raw = Reader(s).reply().decode()
        s.sendall(b"INFO memory\r\n")
        mem_only = Reader(s).reply().decode()
        s.close()
        for sec in ("# Server", "# Clients", "# Memory", "# Stats",
                    "# Tiers", "# Keyspace"):
            assert sec in raw, "default INFO lacks %s" % sec
        for sec, field in (("server", "uptime_in_seconds"),
                           ("clients", "connected_clients"),
                           ("memory", "used_memory_rss"),
                           ("stats", "total_connections_received"),
                           ("tiers", "dram_capacity"),
                           ("keyspace", "db0")):
            one = r.info(sec)
            assert field in one, "INFO %s lacks %s: %r" % (sec, field, one)
        assert r.info("keyspace")["db0"]["keys"] == 1
        assert "# Server" not in mem_only and "# Memory" in mem_only
        assert r.info("memory")["maxmemory"] == 64 << 20
        # CONFIG GET with patterns
        cg = r.config_get("maxclients")
        assert cg == {"maxclients": "123"}, cg
        assert r.config_get("port") == {"port": str(d.port)}
        many = r.config_get("*")
        for k in ("port", "threads", "timeout", "proto-max-bulk-len",
                  "dram.capacity", "policy", "save", "appendonly"):
            assert k in many, "CONFIG GET * lacks %s" % k
        assert many.get("requirepass", "") == ""
        mx = r.config_get("max*")
        assert "maxclients" in mx and "port" not in mx
        assert r.config_get("no-such-setting") == {}
        raises(lambda: r.execute_command("CONFIG", "SET", "timeout", "5"),
               "not supported")
        # CLIENT
        assert r.client_getname() is None
        assert r.client_setname("worker-1") is True
        assert r.client_getname() == "worker-1"
        raises(lambda: r.client_setname("bad name"), "cannot contain spaces")
        assert isinstance(r.client_id(), int)
        raises(lambda: r.execute_command("CLIENT", "NOPE"),
               "unknown subcommand")
        # HELLO / SELECT / COMMAND / ECHO / PING
        h = r.execute_command("HELLO", "2")
        hd = dict(zip(h[::2], h[1::2]))
        assert hd[b"proto"] == 2 and hd[b"server"] == b"cascade", hd
        raises(lambda: r.execute_command("HELLO", "3"), "NOPROTO")
        raises(lambda: r.execute_command("HELLO", "x"),
               "Protocol version is not an integer")
        assert r.execute_command("SELECT", "0") in (b"OK", True)
        raises(lambda: r.execute_command("SELECT", "1"),
               "DB index is out of range")
        n = r.command_count()
        assert isinstance(n, int) and n >= 30
        assert len(r.execute_command("COMMAND")) == n
        assert r.echo("hello") == b"hello"
        x = Raw(d)
        assert x.cmd("PING", "x") == b"x" and x.cmd("PING") == "PONG"
        is_err(x.cmd("PING", "a", "b"), "wrong number of arguments for "
               "'ping' command")
        assert x.cmd("ECHO", b"\x00\r\n") == b"\x00\r\n"
        x.close()
        # Redis's wording
        raises(lambda: r.execute_command("NOSUCHCMD", "a", "b"),
               "unknown command 'NOSUCHCMD', with args beginning with: "
               "'a' 'b'")
        raises(lambda: r.execute_command("GET"),
               "wrong number of arguments for 'get' command")
        raises(lambda: r.execute_command("GET", "a", "b"),
               "wrong number of arguments for 'get' command")
        raises(lambda: r.execute_command("SET", "a"),
               "wrong number of arguments for 'set' command")
        raises(lambda: r.execute_command("GETRANGE", "a", "x", "1"),
               "value is not an integer or out of range")
        info = r.info("stats")
        assert info["total_error_replies"] >= 10
        assert r.execute_command("QUIT") in (b"OK", True)


@case("basics")
def t_binary_safe():
    with Daemon() as d:
        for r in (d.client(), d.client(unix=True)):
            allb = bytes(range(256))
            vals = {
                b"bin-all": allb * 4,
                b"k\r\nwith\r\ncrlf": b"v\r\n\r\nx\r\n",
                allb: b"\x00" * 1000,
                b"\x00": b"",
                b"\xff\xfe": allb[::-1],
                b"nul-in-middle\x00x": b"$3\r\nfoo\r\n*1\r\n",
            }
            for k, v in vals.items():
                assert r.set(k, v) is True
            for k, v in vals.items():
                got = r.get(k)
                assert got == v, "key %r: %r != %r" % (k, got[:40], v[:40])
                assert r.strlen(k) == len(v)
            assert r.mget(list(vals)) == list(vals.values())
            assert r.delete(*vals) == len(vals)
            # every byte value as a one-byte key and value
            for b in range(256):
                r.set(bytes([b]) + b"-key", bytes([b]))
            for b in range(256):
                assert r.get(bytes([b]) + b"-key") == bytes([b])
            r.flushdb()
        r = d.client()
        raises(lambda: r.set("", "v"), "empty keys are not supported")
        raises(lambda: r.set("x" * 4097, "v"), "key too long")


@case("basics")
def t_failed_write_keeps_old_value():
    """A write the store refuses (a value larger than the DRAM tier) is an
    error and changes nothing - for MSET too: Redis's MSET is atomic, so a
    refused MSET must not have overwritten its other keys."""
    with Daemon(dram="16m") as d:
        r = d.client()
        big = b"B" * (20 << 20)
        r.mset({"a": "old-a", "b": "old-b"})
        raises(lambda: r.set("a", big), "too large")
        assert r.get("a") == b"old-a", "a refused SET changed the value"
        raises(lambda: r.mset({"b": "new-b", "big": big}), "too large")
        assert r.exists("big") == 0
        assert r.get("b") == b"old-b", \
            "a refused MSET overwrote another of its keys (MSET not atomic)"


# Commands sent to redis-server and to cascaded; replies must match.
VS_REDIS = [
    ("SET", "s", "Hello, World"),
    ("GETRANGE", "s", "0", "4"), ("GETRANGE", "s", "0", "-1"),
    ("GETRANGE", "s", "-3", "-1"), ("GETRANGE", "s", "-1", "-1"),
    ("GETRANGE", "s", "-1", "-5"), ("GETRANGE", "s", "5", "3"),
    ("GETRANGE", "s", "-100", "100"), ("GETRANGE", "s", "100", "200"),
    ("GETRANGE", "s", "0", "-100"), ("GETRANGE", "s", "2", "-2"),
    ("GETRANGE", "s", "-5", "5"), ("GETRANGE", "s", "11", "11"),
    ("GETRANGE", "s", "12", "12"), ("GETRANGE", "s", "0", "0"),
    ("GETRANGE", "s", "-12", "-12"), ("GETRANGE", "s", "-13", "-13"),
    ("GETRANGE", "s", "-13", "0"), ("GETRANGE", "s", "3", "-13"),
    ("GETRANGE", "s", "0", "9223372036854775807"),
    ("GETRANGE", "s", "-9223372036854775808", "3"),
    ("GETRANGE", "s", "1", "x"), ("GETRANGE", "s", "01", "2"),
    ("GETRANGE", "missing", "0", "-1"), ("GETRANGE", "s", "0"),
    ("SET", "one", "x"), ("GETRANGE", "one", "0", "0"),
    ("GETRANGE", "one", "-1", "0"), ("GETRANGE", "one", "1", "1"),
    ("STRLEN", "s"), ("STRLEN", "missing"),
    ("SET", "s", "new", "NX"), ("SET", "s", "new", "XX", "GET"),
    ("SET", "s2", "v", "XX"), ("SET", "s2", "v", "NX", "GET"),
    ("SET", "s2", "w", "NX", "GET"),
    ("SET", "s", "v", "EX", "0"), ("SET", "s", "v", "EX", "-5"),
    ("SET", "s", "v", "PX", "x"), ("SET", "s", "v", "EX", "10", "PX", "10"),
    ("SET", "s", "v", "NX", "XX"), ("SET", "s", "v", "KEEPTTL", "EX", "1"),
    ("SET", "s", "v", "EX", "100"), ("TTL", "s"),
    ("SET", "s", "w", "KEEPTTL"), ("TTL", "s"), ("GET", "s"),
    ("SET", "s", "w"), ("TTL", "s"), ("PTTL", "s"),
    ("TTL", "missing"), ("PTTL", "missing"),
    ("EXPIRE", "s", "100"), ("TTL", "s"), ("PERSIST", "s"), ("PERSIST", "s"),
    ("TTL", "s"), ("EXPIRE", "missing", "10"), ("PERSIST", "missing"),
    ("EXPIRE", "s", "x"), ("EXPIRE", "s", "10", "BOGUS"),
    ("EXPIRE", "s", "10", "NX", "XX"), ("EXPIRE", "s", "10", "GT", "LT"),
    ("EXPIRE", "s", "10", "XX"), ("EXPIRE", "s", "10", "GT"),
    ("EXPIRE", "s", "10", "LT"), ("TTL", "s"),
    ("EXPIRE", "s", "20", "GT"), ("TTL", "s"),
    ("EXPIRE", "s", "0"), ("EXISTS", "s"),
    ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c"),
    ("MSET", "a"), ("MSET", "a", "1", "b"),
    ("EXISTS", "a", "b", "c", "a"), ("DEL", "a", "a", "c"),
    ("UNLINK", "b"), ("EXISTS", "a", "b"),
    ("ECHO", "hi"), ("ECHO",), ("PING", "a", "b"), ("PING", "z"),
    ("GET",), ("GET", "a", "b"), ("STRLEN",), ("TTL",), ("DEL",),
    ("EXISTS",), ("MGET",), ("GETRANGE", "s"), ("DBSIZE", "x"),
    ("FOOBAR",), ("FOOBAR", "a", "b"), ("SELECT", "0"), ("SELECT", "x"),
    ("SET", "ov", "old"), ("SET", "ov", "v", "EX", "9223372036854775"),
    ("SET", "ov", "v", "EX", "9223372036854776"), ("GET", "ov"),
    ("SET", "ov", "v", "EXAT", "9223372036854776"), ("GET", "ov"),
    ("SET", "z", "1"), ("DBSIZE",), ("FLUSHDB",), ("DBSIZE",),
]


@case("vs_redis")
def t_vs_redis():
    rs_bin = shutil.which("redis-server")
    if not rs_bin:
        print("    (skipped: redis-server not installed)")
        return
    tmp = tempfile.mkdtemp(prefix="redis-ref-")
    port = free_port()
    ref = subprocess.Popen([rs_bin, "--port", str(port), "--bind",
                            "127.0.0.1", "--save", "", "--appendonly", "no",
                            "--dir", tmp], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        rr = redis.Redis(port=port, socket_timeout=10)
        for _ in range(200):
            try:
                rr.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        with Daemon() as d:
            rc = d.client()
            bad = []

            def do(r, cmd):
                try:
                    return r.execute_command(*cmd)
                except redis.ResponseError as e:
                    return "ERROR: " + str(e)

            for cmd in VS_REDIS:
                a, b = do(rr, cmd), do(rc, cmd)
                if a != b:
                    bad.append("%s: redis %r, cascaded %r" % (
                        " ".join(cmd), a, b))
            assert not bad, "replies differ from redis-server's:\n  " + \
                "\n  ".join(bad)
    finally:
        ref.terminate()
        ref.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- LMCache's pattern and pipelines -----------------------------------------

@case("lmcache")
def t_lmcache_pattern():
    with Daemon(dram="128m") as d:
        r = d.client()
        rnd = random.Random(7)
        chunks = []
        for i in range(32):
            k = "vllm@1@0@%016x" % rnd.getrandbits(64)
            kv = rnd.randbytes(256 << 10)
            meta = rnd.randbytes(28)
            chunks.append((k, kv, meta))
            assert r.set(k + "kv_bytes", kv) is True
            assert r.set(k + "metadata", meta) is True
        for k, kv, meta in chunks:
            assert r.exists(k + "metadata") == 1
            m = r.get(k + "metadata")
            assert m == meta and len(m) == 28
            assert r.get(k + "kv_bytes") == kv
        for k, kv, meta in chunks[:16]:
            assert r.delete(k + "kv_bytes", k + "metadata") == 2
            assert r.exists(k + "metadata") == 0
            assert r.get(k + "kv_bytes") is None
        for k, kv, meta in chunks[16:]:
            assert r.get(k + "kv_bytes") == kv


@case("pipeline")
def t_pipeline_1mib():
    with Daemon(dram="256m") as d:
        r = d.client()
        rnd = random.Random(11)
        vals = {("p%d" % i).encode(): rnd.randbytes(1 << 20)
                for i in range(64)}
        p = r.pipeline(transaction=False)
        for k, v in vals.items():
            p.set(k, v)
        assert p.execute() == [True] * 64
        p = r.pipeline(transaction=False)
        for k in vals:
            p.get(k)
        got = p.execute()
        for (k, v), g in zip(vals.items(), got):
            assert g == v, "pipelined GET %r differs" % k
        # one MSET / MGET
        vals2 = {("m%d" % i).encode(): rnd.randbytes(1 << 20)
                 for i in range(64)}
        assert r.mset(vals2) is True
        got = r.mget(list(vals2))
        assert len(got) == 64
        for (k, v), g in zip(vals2.items(), got):
            assert g == v, "MGET %r differs" % k
        assert r.dbsize() == 128
        # over the Unix socket too
        u = d.client(unix=True)
        got = u.mget(list(vals))
        assert all(g == v for g, v in zip(got, vals.values()))


@case("pipeline")
def t_pipeline_no_stall():
    """64 pipelined GETs of 1 MiB on one connection, 20 rounds: every reply
    arrives.  (After back-pressure the daemon runs the waiting commands
    once; if the socket then takes all their replies at once, the rest of
    the pipeline used to be left unexecuted - the client hangs forever.)"""
    with Daemon(dram="128m") as d:
        r = d.client()
        vals = {("s%d" % i).encode(): bytes([i]) * (1 << 20)
                for i in range(64)}
        r.mset(vals)
        s = d.raw(timeout=10)
        rd = Reader(s)
        batch = b"".join(enc("GET", k) for k in vals)
        for rnd_i in range(20):
            s.sendall(batch)
            n = 0
            try:
                for k, v in vals.items():
                    assert rd.reply() == v, "round %d: %r differs" % (rnd_i, k)
                    n += 1
            except socket.timeout:
                raise AssertionError("round %d: stalled after %d of 64 "
                                     "replies (no reply for 10 s)" % (rnd_i, n))
        s.close()


# ---- CASCADE.* -----------------------------------------------------------------

@case("cascade_cmds")
def t_cascade_commands():
    with Daemon(dram="16m") as d:
        r = d.client()
        x = r.execute_command
        assert x("CASCADE.PUT", "sys", "system prompt", "PREFIX",
                 "PRIORITY", "high") == b"OK"
        assert x("CASCADE.PUT", "c1", "chunk1", "PARENT", "sys") == b"OK"
        assert x("CASCADE.PUT", "c2", "chunk2", "PARENT", "c1", "PRIORITY",
                 "low") == b"OK"
        assert x("CASCADE.PUT", "c3", "chunk3", "PARENT", "c2", "TTL",
                 "100") == b"OK"
        assert r.get("c2") == b"chunk2"
        assert x("CASCADE.MATCH", "sys", "c1", "c2", "c3", "c4") == 4
        assert x("CASCADE.MATCH", "sys", "c1", "nope", "c3") == 2
        assert x("CASCADE.MATCH", "nope", "sys") == 0
        assert 0 < r.pttl("c3") <= 100
        time.sleep(0.3)
        assert x("CASCADE.MATCH", "sys", "c1", "c2", "c3") == 3
        assert r.get("c3") is None
        assert x("CASCADE.PUT", "c1", "other", "NX") is None
        assert r.get("c1") == b"chunk1"
        assert x("CASCADE.PUT", "zz", "v", "XX") is None
        assert r.exists("zz") == 0
        raises(lambda: x("CASCADE.PUT", "k", "v", "PRIORITY", "urgent"),
               "PRIORITY must be low, normal or high")
        raises(lambda: x("CASCADE.PUT", "k", "v", "TTL", "0"),
               "invalid expire time")
        raises(lambda: x("CASCADE.PUT", "k", "v", "NX", "XX"),
               "syntax error")
        raises(lambda: x("CASCADE.PUT", "k", "v", "WHAT"), "syntax error")
        raises(lambda: x("CASCADE.PUT", "k"), "wrong number of arguments")
        assert r.exists("k") == 0
        # pins: a pinned key survives eviction
        pinned = random.Random(3).randbytes(1 << 20)
        r.set("pinned", pinned)
        assert x("CASCADE.PIN", "pinned") == 1
        assert x("CASCADE.PIN", "pinned") == 1
        assert x("CASCADE.PIN", "absent") == 0
        assert "pins=1" in x("CLIENT", "INFO").decode()
        filler = b"f" * (1 << 20)
        for i in range(64):  # 64 MiB through a 16 MiB DRAM tier
            r.set("fill%d" % i, filler[:-1] + bytes([i]))
        st = r.info("stats")
        assert st["evicted_keys"] > 0, "nothing evicted: test is void"
        assert r.get("pinned") == pinned, "pinned key lost to eviction"
        assert x("CASCADE.UNPIN", "pinned") == 1
        assert x("CASCADE.UNPIN", "pinned") == 0
        s = x("CASCADE.STATS").decode()
        assert "dram_blocks:" in s and "get_p99_ns:" in s, s
        assert "dram_evictions:" in s
        # a disconnect releases pins (the server must not crash on it)
        r2 = d.client()
        r2.set("p2", "v")
        assert r2.execute_command("CASCADE.PIN", "p2") == 1
        assert r.info("stats")["views_held"] >= 1
        # redis-py's close() only returns the connection to its pool: the
        # pool's disconnect closes the socket
        r2.close()
        r2.connection_pool.disconnect()
        deadline = time.time() + 5
        while r.info("stats")["views_held"] and time.time() < deadline:
            time.sleep(0.05)
        assert r.info("stats")["views_held"] == 0, "the pin outlived its connection"
        assert r.get("p2") == b"v"
        # CASCADE.TOUCH: uses of values read through the shared-memory
        # index, counted as hits; CASCADE.SHMINDEX needs the Unix socket
        h0 = r.info("stats")["keyspace_hits"]
        assert x("CASCADE.TOUCH", "p2", "absent", "sys") == 2
        assert r.info("stats")["keyspace_hits"] == h0 + 2
        raises(lambda: x("CASCADE.TOUCH"), "wrong number of arguments")
        raises(lambda: x("CASCADE.SHMINDEX"), "Unix socket")


# ---- namespaces & auth -------------------------------------------------------

@case("auth")
def t_namespaces_auth():
    with Daemon("--requirepass", "pw", "--namespace", "a", "pa",
                "--namespace", "b", "pb") as d:
        x = Raw(d)
        is_err(x.cmd("GET", "k"), "NOAUTH Authentication required.")
        is_err(x.cmd("SET", "k", "v"), "NOAUTH")
        is_err(x.cmd("DBSIZE"), "NOAUTH")
        is_err(x.cmd("AUTH", "wrong"), "WRONGPASS invalid username-password")
        is_err(x.cmd("AUTH", "a", "pb"), "WRONGPASS")
        is_err(x.cmd("AUTH", "nosuch", "pa"), "WRONGPASS")
        is_err(x.cmd("AUTH", "a", "pa", "extra"), "syntax error")
        is_err(x.cmd("GET", "k"), "NOAUTH")
        is_err(x.cmd("HELLO", "2"), "NOAUTH")
        is_err(x.cmd("PING"), "NOAUTH")
        ra = d.client(username="a", password="pa")
        rb = d.client(username="b", password="pb")
        rd = d.client(password="pw")
        ru = d.client(unix=True, username="a", password="pa")
        assert ra.set("same", "in-a") and rb.set("same", "in-b")
        assert rd.set("same", "in-default")
        ra.mset({"a1": "1", "a2": "2"})
        assert ra.get("same") == b"in-a"
        assert rb.get("same") == b"in-b"
        assert rd.get("same") == b"in-default"
        assert ru.get("same") == b"in-a"
        assert rb.get("a1") is None and rb.exists("a1", "a2") == 0
        assert ra.dbsize() == 3 and rb.dbsize() == 1 and rd.dbsize() == 1
        assert rb.delete("a1") == 0 and ra.exists("a1") == 1
        assert rb.flushdb() is True
        assert rb.dbsize() == 0 and ra.dbsize() == 3 and rd.dbsize() == 1
        assert ra.get("same") == b"in-a"
        assert rb.execute_command("FLUSHALL") in (b"OK", True)
        assert ra.dbsize() == 3, "FLUSHALL in b reached namespace a"
        # AUTH pw -> default namespace; AUTH switches namespaces
        assert x.cmd("AUTH", "pw") == "OK"
        assert x.cmd("GET", "same") == b"in-default"
        assert x.cmd("AUTH", "default", "pw") == "OK"
        assert x.cmd("AUTH", "a", "pa") == "OK"
        assert x.cmd("GET", "same") == b"in-a"
        is_err(x.cmd("AUTH", "b", "bad"), "WRONGPASS")
        assert x.cmd("GET", "same") == b"in-a", "failed AUTH changed ns"
        x.close()
        # HELLO 2 AUTH
        h = d.client()
        rep = h.execute_command("HELLO", "2", "AUTH", "b", "pb", "SETNAME",
                                "hb")
        assert b"proto" in rep
        h.set("same", "b-again")
        assert rb.get("same") == b"b-again"
        assert h.client_getname() == "hb"
        h2 = Raw(d)
        is_err(h2.cmd("HELLO", "2", "AUTH", "b", "px"), "WRONGPASS")
        is_err(h2.cmd("GET", "same"), "NOAUTH")
        rep = h2.cmd("HELLO", "2", "AUTH", "a", "pa")
        assert isinstance(rep, list) and b"proto" in rep, rep
        assert h2.cmd("GET", "same") == b"in-a"
        h2.close()
        # INFO keyspace is the connection's namespace
        assert ra.info("keyspace")["db0"]["keys"] == 3
        # CONFIG GET never shows passwords
        cg = ra.config_get("*")
        assert "pw" not in cg.values() and "pa" not in cg.values()


@case("auth")
def t_unauthenticated_big_bulk():
    """Before AUTH a client must not be able to make the daemon buffer a
    large value (Redis: CVE-2021-32675, unauthenticated clients get a
    16 KiB bulk / 10-argument limit).  Expect the connection closed."""
    with Daemon("--requirepass", "pw") as d:
        s = d.raw()
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n")
        # stream 32 MiB of the declared 100 MB
        chunk = b"x" * (1 << 20)
        sent_all = True
        try:
            for _ in range(32):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False
        closed = (not sent_all) or wait_closed(s, 3)
        s.close()
        r = d.client(password="pw")
        assert r.ping()
        assert closed, ("an unauthenticated client was allowed to stream "
                        "32 MiB of a declared 100 MB value (no pre-AUTH "
                        "bulk limit)")


@case("auth")
def t_shutdown_needs_default_namespace():
    """A namespace is a tenant: its client must not be able to stop the
    whole daemon (and every other tenant) with SHUTDOWN.  The default
    namespace (requirepass) may."""
    with Daemon("--requirepass", "pw", "--namespace", "a", "pa") as d:
        x = Raw(d)
        assert x.cmd("AUTH", "a", "pa") == "OK"
        x.s.sendall(enc("SHUTDOWN"))
        time.sleep(0.5)
        alive = d.alive()
        x.close()
        if not alive:
            d.proc.wait()
        assert alive, "a client of namespace 'a' shut the daemon down"
        y = Raw(d)
        assert y.cmd("AUTH", "pw") == "OK"
        y.s.sendall(enc("SHUTDOWN", "NOSAVE"))
        assert wait_closed(y.s, 30)
        y.close()
        assert d.proc.wait(60) == 0


@case("auth")
def t_pins_are_per_namespace():
    """CASCADE.PIN/UNPIN name a key of the connection's namespace: after
    AUTH into another namespace, a pin of the old namespace's key must not
    answer for (or be released by) the same key name in the new one."""
    with Daemon("--namespace", "a", "pa", "--namespace", "b", "pb") as d:
        x = Raw(d)
        assert x.cmd("AUTH", "a", "pa") == "OK"
        assert x.cmd("SET", "k", "in-a") == "OK"
        assert x.cmd("CASCADE.PIN", "k") == 1
        assert x.cmd("AUTH", "b", "pb") == "OK"
        assert x.cmd("EXISTS", "k") == 0
        assert x.cmd("CASCADE.PIN", "k") == 0, \
            "PIN of a key absent in namespace b answered 1 (a's pin)"
        assert x.cmd("CASCADE.UNPIN", "k") == 0, \
            "UNPIN in namespace b released namespace a's pin"
        x.close()


@case("auth")
def t_refuse_public_bind():
    rc, out = run_fail("--port", str(free_port()), "--bind", "0.0.0.0",
                       "--dram", "16m")
    assert rc != 0, "cascaded started on 0.0.0.0 without a password"
    assert "without a password" in out, out
    assert "AddressSanitizer" not in out
    # with a password it starts
    with Daemon("--bind", "0.0.0.0", "--requirepass", "pw") as d:
        assert d.client(password="pw").ping()
    # bad flags are clear errors too
    rc, out = run_fail("--port", "notaport")
    assert rc != 0 and "bad value for 'port'" in out, out
    rc, out = run_fail("--no-such-flag", "1")
    assert rc != 0 and "unknown setting" in out, out


# ---- the disk tier -------------------------------------------------------------

@case("disk")
def t_disk_restart():
    ddir = tempfile.mkdtemp(prefix="cascaded-disk-", dir=DISK_BASE)
    try:
        rnd = random.Random(5)
        vals = {("d%d" % i).encode(): rnd.randbytes(rnd.randint(1, 512 << 10))
                for i in range(48)}  # ~12 MiB through an 8 MiB DRAM tier
        vals[b"small"] = b"s"
        vals[bytes(range(256))] = bytes(range(256)) * 7
        with Daemon("--disk-dir", ddir, dram="8m") as d:
            r = d.client()
            for k, v in vals.items():
                assert r.set(k, v) is True
            assert r.set("ttl-long", "v", ex=1000) is True
            assert r.set("ttl-short", "v", px=300) is True
            assert r.delete(b"d0") == 1
            del vals[b"d0"]
            # a second daemon on the same directory must refuse
            rc, out = run_fail("--port", str(free_port()), "--disk-dir", ddir,
                               "--dram", "8m")
            assert rc != 0, "a second daemon opened the same disk-dir"
            assert "cannot open the store" in out and ddir in out, out
            assert r.get(b"d1") == vals[b"d1"], "first daemon disturbed"
            st = r.info("tiers")
            assert st.get("disk_blocks", 0) > 0, st
        time.sleep(0.4)  # ttl-short runs out while no daemon runs
        with Daemon("--disk-dir", ddir, dram="8m") as d:
            r = d.client()
            assert r.dbsize() == len(vals) + 1, r.dbsize()
            for k, v in vals.items():
                g = r.get(k)
                assert g == v, "%r after restart: %s" % (
                    k, "missing" if g is None else "%d bytes differ" % len(g))
            assert r.get(b"d0") is None, "a deleted key came back"
            assert 900 <= r.ttl("ttl-long") <= 1000, r.ttl("ttl-long")
            assert r.get("ttl-short") is None
            assert r.info("tiers").get("disk_recovered", 0) > 0
    finally:
        shutil.rmtree(ddir, ignore_errors=True)


@case("disk")
def t_failed_start_keeps_unix_socket():
    """A second daemon that fails to start (same disk-dir) must not take
    the running daemon's Unix socket with it (it unlinks and re-binds the
    path before the store fails to open, then unlinks it on the way out)."""
    ddir = tempfile.mkdtemp(prefix="cascaded-disk-", dir=DISK_BASE)
    try:
        with Daemon("--disk-dir", ddir, dram="8m") as d:
            rc, out = run_fail("--port", str(free_port()), "--disk-dir", ddir,
                               "--dram", "8m", "--unixsocket", d.sock)
            assert rc != 0, "a second daemon opened the same disk-dir"
            ok = os.path.exists(d.sock)
            if ok:
                u = Raw(d, unix=True)
                ok = u.cmd("PING") == "PONG"
                u.close()
            assert ok, "the running daemon's Unix socket is gone after a " \
                "second daemon failed to start on the same path"
    finally:
        shutil.rmtree(ddir, ignore_errors=True)


# ---- a 160 MiB value while another client works ----------------------------

@case("big_value")
def t_big_value_latency():
    size = 160 << 20
    with Daemon("--proto-max-bulk-len", "512m", dram="512m") as d:
        big = os.urandom(size)
        w = d.client()
        q = d.client()
        q.set("small", "v")
        lat = []
        done = threading.Event()
        errs = []

        def pinger():
            try:
                while not done.is_set():
                    t = time.monotonic()
                    assert q.ping()
                    assert q.get("small") == b"v"
                    lat.append(time.monotonic() - t)
                    time.sleep(0.01)
            except Exception as e:  # noqa
                errs.append(e)

        th = threading.Thread(target=pinger)
        th.start()
        t0 = time.monotonic()
        try:
            assert w.set("big", big) is True
            got = w.get("big")
        finally:
            done.set()
            th.join()
        dt = time.monotonic() - t0
        assert not errs, errs
        assert got == big, "160 MiB value differs"
        del got
        assert w.strlen("big") == size
        assert len(lat) >= 3, "pinger starved: %d rounds in %.1fs" % (
            len(lat), dt)
        worst = max(lat)
        print("    160 MiB SET+GET %.1fs; %d PING+GET rounds, worst %.0f ms" % (
            dt, len(lat), worst * 1000))
        assert worst < 1.0, "PING/GET took %.2fs during the big SET" % worst
        assert w.getrange("big", size - 5, -1) == big[-5:]


# ---- limits --------------------------------------------------------------------

@case("limits")
def t_limit_bulk_len():
    with Daemon("--proto-max-bulk-len", "1m") as d:
        other = d.client()
        other.set("keep", "v")
        s = d.raw()
        rd = Reader(s)
        s.sendall(enc("SET", "ok", b"x" * (1 << 20)))
        assert rd.reply() == "OK"
        s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % ((1 << 20) + 1))
        e = rd.reply()
        assert isinstance(e, Err) and "invalid bulk length" in e, e
        assert wait_closed(s, 5), "connection not closed after the error"
        s.close()
        r = d.client()
        # redis-py may still be sending when the daemon answers and closes:
        # then it sees the reset instead of the error (as with redis-server)
        try:
            r.set("big2", b"y" * (2 << 20))
            raise AssertionError("an over-limit SET succeeded")
        except redis.ResponseError as e:
            assert "invalid bulk length" in str(e), str(e)
        except redis.ConnectionError:
            pass
        assert other.get("keep") == b"v" and other.exists("big", "big2") == 0
        assert len(other.get("ok")) == 1 << 20


@case("limits")
def t_limit_maxclients():
    with Daemon("--maxclients", "4") as d:
        socks = []
        for i in range(4):
            s = d.raw()
            s.sendall(b"PING\r\n")
            assert Reader(s).reply() == "PONG"
            socks.append(s)
        s5 = d.raw()
        data = b""
        try:
            while True:
                c = s5.recv(4096)
                if not c:
                    break
                data += c
        except ConnectionResetError:
            pass
        assert b"max number of clients reached" in data, data
        s5.close()
        socks.pop().close()
        time.sleep(0.3)
        r = d.client()
        assert r.ping()
        assert r.info("stats")["rejected_connections"] >= 1
        for s in socks:
            s.sendall(b"PING\r\n")
            assert Reader(s).reply() == "PONG"
            s.close()


@case("limits")
def t_limit_timeout():
    with Daemon("--timeout", "1") as d:
        idle = d.raw()
        busy = d.raw()
        brd = Reader(busy)
        t0 = time.time()
        while time.time() - t0 < 3:
            busy.sendall(b"PING\r\n")
            assert brd.reply() == "PONG"
            time.sleep(0.2)
        assert wait_closed(idle, 0.5), "idle client not closed after ~3 s"
        busy.sendall(b"PING\r\n")
        assert brd.reply() == "PONG", "an active client was closed"
        idle.close()
        busy.close()


@case("limits")
def t_limit_output_buffer():
    with Daemon("--client-output-buffer-limit", "1m", dram="64m") as d:
        r = d.client()
        v = b"o" * (256 << 10)
        for i in range(16):
            r.set("ob%d" % i, v)
        keys = ["ob%d" % i for i in range(16)]
        s = d.raw()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # a pipeline of huge MGETs, never read: 20 x 4 MiB of replies
        try:
            for _ in range(20):
                s.sendall(enc("MGET", *keys))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert wait_closed(s, 10), "over-limit client not disconnected"
        s.close()
        assert r.ping() and r.get("ob3") == v
        assert len(r.mget(keys[:3])) == 3  # 768 KiB < 1m: fine
        assert r.dbsize() == 16


# ---- bad input ---------------------------------------------------------------------

def _fuzz_payload(rnd):
    kind = rnd.randrange(6)
    if kind == 0:
        return rnd.randbytes(rnd.randint(1, 4096))
    if kind == 1:  # a valid frame, mutated
        f = bytearray(enc("SET", "fz%d" % rnd.randrange(50),
                          rnd.randbytes(rnd.randint(0, 300))))
        for _ in range(rnd.randint(1, 8)):
            f[rnd.randrange(len(f))] = rnd.randrange(256)
        return bytes(f)
    if kind == 2:  # a valid frame cut short
        f = enc("SET", "fz%d" % rnd.randrange(50), rnd.randbytes(1000))
        return f[:rnd.randrange(len(f))]
    if kind == 3:  # structure characters
        return bytes(rnd.choice(b"*$\r\n0123456789-+:") for _ in
                     range(rnd.randint(1, 200)))
    if kind == 4:  # inline junk with quotes
        return bytes(rnd.choice(b"\"' \\x0aGETSETPING\r\n\t")
                     for _ in range(rnd.randint(1, 300)))
    return b"*%d\r\n" % rnd.choice([0, -1, 1, 3, 1 << 20]) + \
        rnd.randbytes(rnd.randint(0, 64))


@case("bad_input")
def t_bad_input():
    with Daemon("--threads", "2") as d:
        r = d.client()
        keep = {("keep%d" % i).encode(): os.urandom(1000 + i) for i in
                range(20)}
        r.mset(keep)
        # huge declared lengths: an error, then the connection closes
        for frame, want in ((b"*2147483647\r\n", "invalid multibulk length"),
                            (b"*1\r\n$99999999999\r\n", "invalid bulk length"),
                            (b"*1\r\n$-5\r\n", "invalid bulk length"),
                            (b"*1\r\nX3\r\n", "expected '$', got 'X'"),
                            (b"*99999999999999999999\r\n",
                             "invalid multibulk length"),
                            (b'GET "unbalanced\r\n', "unbalanced quotes")):
            s = d.raw()
            s.sendall(frame)
            e = Reader(s).reply()
            assert isinstance(e, Err) and "Protocol error" in e and \
                want in e, (frame, e)
            assert wait_closed(s, 5), frame
            s.close()
        # a large declared count/bulk, then close: nothing is preallocated
        rss0 = rss_of(d.proc.pid)
        held = []
        for i in range(8):
            s = d.raw()
            s.sendall(b"*1048576\r\n$3\r\nGET\r\n")
            held.append(s)
            s = d.raw()
            s.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nhk\r\n$536870912\r\n" +
                      b"y" * 4096)
            held.append(s)
        time.sleep(0.3)
        assert r.ping()
        grown = rss_of(d.proc.pid) - rss0
        assert grown < (256 << 20), "RSS grew %d MiB for 16 declared-huge " \
            "but empty commands" % (grown >> 20)
        for s in held:
            s.close()
        # truncated frames then close, half-closed connections
        full = enc("SET", "trunc", b"z" * 5000)
        for cut in (1, 3, 4, 10, 20, len(full) - 3, len(full) - 1):
            s = d.raw()
            s.sendall(full[:cut])
            s.close()
            s = d.raw()
            s.sendall(full[:cut])
            s.shutdown(socket.SHUT_WR)
            assert wait_closed(s, 5)
            s.close()
        assert r.exists("trunc") == 0, "a truncated SET was executed"
        # inline commands
        s = d.raw()
        rd = Reader(s)
        s.sendall(b"PING\r\n")
        assert rd.reply() == "PONG"
        s.sendall(b"SET inl \"a b\\r\\n\\x41\"\r\nGET inl\n")
        assert rd.reply() == "OK" and rd.reply() == b"a b\r\nA"
        s.sendall(b"SET 'q k' 'it\\'s'\r\nGET 'q k'\r\n")
        assert rd.reply() == "OK" and rd.reply() == b"it's"
        s.sendall(b"\r\n   \r\nECHO   spaced\t\r\n")
        assert rd.reply() == b"spaced"
        s.sendall(b"NOSUCH x\r\n")
        assert "unknown command" in rd.reply()
        s.close()
        # random bytes (seeded), many rounds, several connections at once
        rnd = random.Random(1234)
        for rnd_i in range(150):
            conns = [d.raw(timeout=2) for _ in range(3)]
            for s in conns:
                try:
                    s.sendall(_fuzz_payload(rnd))
                    if rnd.random() < 0.3:
                        s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            for s in conns:
                if rnd.random() < 0.5:
                    try:
                        s.settimeout(0.02)
                        s.recv(65536)
                    except OSError:
                        pass
                s.close()
            if rnd_i % 50 == 49:
                assert d.alive(), "daemon died during fuzzing"
                assert r.ping()
        assert d.alive()
        r = d.client()
        assert r.set("after", "fuzz") and r.get("after") == b"fuzz"
        got = r.mget(list(keep))
        assert got == list(keep.values()), "data lost during bad input"


@case("bad_input")
def t_half_close_after_command():
    """Commands that arrived complete before the client's FIN are executed
    and answered, as redis-server does (cat cmds | nc -N)."""
    with Daemon() as d:
        r = d.client()
        for size in (10, 3000, 64 << 10, 1 << 20):
            s = d.raw()
            s.sendall(enc("SET", "hc%d" % size, b"h" * size) + enc("GET", "x"))
            s.shutdown(socket.SHUT_WR)
            rd = Reader(s)
            try:
                rep = [rd.reply(), rd.reply()]
            except (EOFError, ConnectionResetError):
                rep = "connection closed without a reply"
            s.close()
            assert rep == ["OK", None], "size %d: %r" % (size, rep)
            assert r.strlen("hc%d" % size) == size
        # many pipelined commands, then the half-close
        s = d.raw()
        s.sendall(b"".join(enc("SET", "pl%d" % i, "v" * 100)
                           for i in range(2000)))
        s.shutdown(socket.SHUT_WR)
        n = 0
        rd = Reader(s)
        try:
            while n < 2000:
                assert rd.reply() == "OK"
                n += 1
        except (EOFError, ConnectionResetError):
            pass
        s.close()
        assert n == 2000, "only %d of 2000 replies before close" % n
        assert r.exists(*["pl%d" % i for i in range(2000)]) == 2000


@case("bad_input")
def t_half_close_before_read():
    """Deterministic form of the above: the daemon is stopped (SIGSTOP)
    while a client sends a complete SET + PING (64 KiB) and half-closes, so the
    command and the FIN are both waiting when it reads.  redis-server
    executes and answers it; so must cascaded."""
    with Daemon("--threads", "1") as d:
        r = d.client()
        assert r.ping()
        # 64 KiB in all: the daemon's reads then end exactly at the end of
        # its input buffer, and the next read sees the FIN
        tail = enc("PING")
        head = len(enc("SET", "hb", b""))
        vlen = (64 << 10) - len(tail) - head
        vlen -= len(str(vlen)) - 1
        frame = enc("SET", "hb", b"q" * vlen) + tail
        assert len(frame) == 64 << 10, len(frame)
        for attempt in range(5):  # over the Unix socket: no TCP window
            os.kill(d.proc.pid, signal.SIGSTOP)
            try:
                s = d.unix_socket()
                s.settimeout(10)
                s.sendall(frame)
                s.shutdown(socket.SHUT_WR)
            finally:
                os.kill(d.proc.pid, signal.SIGCONT)
            rd = Reader(s)
            try:
                rep = [rd.reply(), rd.reply()]
            except (EOFError, ConnectionResetError):
                rep = "connection closed without a reply"
            s.close()
            assert rep == ["OK", "PONG"], "attempt %d: %r" % (attempt, rep)
            assert r.strlen("hb") == vlen
            r.delete("hb")


# ---- load --------------------------------------------------------------------------

@case("load")
def t_load():
    dram = 256 << 20
    with Daemon("--threads", "2", dram="256m") as d:
        stop = time.monotonic() + 5
        errors = []
        counts = [0] * 32
        peak = [0]

        def worker(i):
            try:
                rnd = random.Random(i)
                r = d.client(unix=(i % 4 == 0))
                mine = {}
                while time.monotonic() < stop:
                    k = b"L%d-%d" % (i, rnd.randrange(8))
                    if k in mine and rnd.random() < 0.4:
                        g = r.get(k)
                        assert g == mine[k], "key %r: wrong bytes" % k
                    else:
                        v = rnd.randbytes(rnd.randint(1 << 10, 256 << 10))
                        assert r.set(k, v) is True
                        mine[k] = v
                        assert r.get(k) == v
                    counts[i] += 1
                got = r.mget(list(mine))
                assert got == list(mine.values()), "final MGET differs"
            except Exception as e:  # noqa
                errors.append("client %d: %r" % (i, e))

        def sampler():
            while time.monotonic() < stop + 0.5:
                try:
                    peak[0] = max(peak[0], rss_of(d.proc.pid))
                except OSError:
                    pass
                time.sleep(0.1)

        ths = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        sm = threading.Thread(target=sampler)
        sm.start()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        sm.join()
        assert not errors, "\n".join(errors[:5])
        assert sum(counts) > 200, counts
        # Bound: the DRAM tier (256 MiB) + 256 MiB for 32 connections'
        # buffers (each at most a 256 KiB value in and out, plus chunks)
        # and the index; under ASan, its quarantine and shadow on top.
        bound = dram + (256 << 20) + ASAN_SLACK
        print("    %d ops, RSS peak %d MiB (bound %d MiB)" % (
            sum(counts), peak[0] >> 20, bound >> 20))
        assert peak[0] < bound, "RSS peak %d MiB > bound %d MiB" % (
            peak[0] >> 20, bound >> 20)
        assert d.client().info("stats")["evicted_keys"] == 0


# ---- signals and daemonising -----------------------------------------------

@case("signals")
def t_sighup_reopens_log():
    tmp = tempfile.mkdtemp(prefix="cascaded-log-")
    try:
        log = os.path.join(tmp, "cascaded.log")
        with Daemon("--logfile", log) as d:
            assert "ready to accept connections" in open(log).read()
            os.rename(log, log + ".1")
            d.proc.send_signal(signal.SIGHUP)
            t0 = time.time()
            while time.time() - t0 < 10 and not os.path.exists(log):
                time.sleep(0.05)
            assert os.path.exists(log), "no new log file after SIGHUP"
            time.sleep(0.1)
            assert "log file reopened" in open(log).read()
            assert d.client().ping()
            # a second HUP, log file removed meanwhile
            os.unlink(log)
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert os.path.exists(log) and d.alive()
        assert "cascaded stopped" in open(log).read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@case("signals")
def t_daemonize_pidfile():
    tmp = tempfile.mkdtemp(prefix="cascaded-dmn-")
    try:
        pidf = os.path.join(tmp, "c.pid")
        log = os.path.join(tmp, "c.log")
        port = free_port()
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "log_path=%s/asan:%s" % (
            tmp, env.get("ASAN_OPTIONS", ""))
        env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:%s" % (
            tmp, env.get("UBSAN_OPTIONS", ""))
        p = subprocess.run([BIN, "--port", str(port), "--dram", "16m",
                            "--daemonize", "yes", "--pidfile", pidf,
                            "--logfile", log], env=env, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.returncode
        t0 = time.time()
        while time.time() - t0 < 30 and not os.path.exists(pidf):
            time.sleep(0.05)
        assert os.path.exists(pidf), "no pid file"
        pid = int(open(pidf).read().strip())
        assert os.path.exists("/proc/%d" % pid)
        r = redis.Redis(port=port, socket_timeout=30)
        for _ in range(600):
            try:
                if r.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert r.set("d", "1") and r.get("d") == b"1"
        assert r.info("server")["process_id"] == pid
        os.kill(pid, signal.SIGTERM)
        t0 = time.time()
        while time.time() - t0 < 60 and os.path.exists("/proc/%d" % pid):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break
            except OSError:
                break
            time.sleep(0.05)
        assert not os.path.exists(pidf), "pid file left after SIGTERM"
        text = open(log).read()
        assert "cascaded stopped" in text and "(with errors)" not in text
        rep = [f for f in os.listdir(tmp) if f.startswith(("asan", "ubsan"))]
        assert not rep, "sanitizer reports: %s" % open(
            os.path.join(tmp, rep[0])).read()[-3000:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- Prometheus ------------------------------------------------------------------

@case("metrics")
def t_metrics():
    mport = free_port()
    with Daemon("--metrics-port", str(mport)) as d:
        r = d.client()
        r.set("m", "v")
        r.get("m")
        r.get("none")

        def get(path):
            c = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
            c.request("GET", path)
            resp = c.getresponse()
            body = resp.read().decode()
            c.close()
            return resp.status, resp.getheader("Content-Type"), body

        st, ct, body = get("/metrics")
        assert st == 200 and ct.startswith("text/plain"), (st, ct)
        lines = body.splitlines()
        for want in ("cascade_up 1", "cascade_keys 1"):
            assert want in lines, "missing %r" % want
        for pre in ('cascade_tier_hits_total{tier="dram"} ',
                    'cascade_tier_capacity_bytes{tier="dram"} %d' % (64 << 20),
                    "cascade_commands_total ", "cascade_puts_total 1",
                    "# TYPE cascade_up gauge",
                    "# TYPE cascade_commands_total counter"):
            assert any(ln.startswith(pre) for ln in lines), "missing %r" % pre
        hits = [ln for ln in lines
                if ln.startswith('cascade_tier_hits_total{tier="dram"}')]
        assert int(hits[0].split()[-1]) >= 1, hits
        # every sample line is "name{labels} number"
        for ln in lines:
            if ln and not ln.startswith("#"):
                float(ln.rsplit(" ", 1)[1])
        assert get("/metrics?x=1")[0] == 200
        for path in ("/", "/other", "/metricsx"):
            assert get(path)[0] == 404, path
        # junk on the metrics port does not hurt
        s = socket.create_connection(("127.0.0.1", mport), 5)
        s.sendall(os.urandom(10000))
        wait_closed(s, 5)
        s.close()
        assert get("/metrics")[0] == 200 and r.ping()


# ---- main ------------------------------------------------------------------------

def main():
    want = [a for a in ARGS if not a.startswith("-")]
    sel = [(g, f) for g, f in CASES
           if not want or g in want or f.__name__ in want]
    if not sel:
        print("no such case: %s" % " ".join(want))
        return 1
    failed = []
    for g, f in sel:
        t0 = time.time()
        try:
            f()
            print("ok   %-12s %-28s %5.1fs" % (g, f.__name__, time.time() - t0),
                  flush=True)
        except Exception:
            failed.append(f.__name__)
            print("FAIL %-12s %-28s %5.1fs" % (g, f.__name__, time.time() - t0))
            traceback.print_exc()
            sys.stdout.flush()
    print("%d/%d passed%s" % (len(sel) - len(failed), len(sel),
                              (": FAILED " + " ".join(failed)) if failed
                              else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
