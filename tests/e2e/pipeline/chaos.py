"""chaos.py — the services of the pipeline tests under a supervisor, and the
faults of tests/e2e/test_pipeline_chaos.sh (issue 11, item 2).

Supervisor: starts qb-api (on a fixed port, so clients keep their URL across
restarts) and the pipeline's services (PIPE_SERVICES_FILE: one line per
service, "name VAR=val ..."), each with a new log per start
($PIPE_T/<name>.<n>.log); every pid is appended to $PIPE_T/chaos.pids for the
shell's EXIT trap. A watcher restarts a service that exits on its own (an
"unplanned exit", logged and counted: e.g. qb-execution stops when its
PostgreSQL session, which holds the leader lock, ends).

Chaos: a plan drawn from one seed (QB_CHAOS_SEED) of events placed at bar
positions of the replay; pipeline.py calls before_step(i) before each time
step it publishes and the due events run:
  kill NAME   SIGKILL, then a restart. qb-features, qb-notify, qb-data and
              qb-api are killed wherever they are: their inputs are consumer
              groups (or none), a restart resumes from committed offsets.
              qb-risk reads md.bars through a GROUP-LESS reader that starts
              at the END of the topic (a mark comes from the next bar after a
              restart), so a bar published while it is down is not seen by
              it. qb-execution reads md.bars again from where it had applied
              them (trading.paper_feed, test_exec_paper_restart), but an order
              that reaches it after its feed went past the order's bar (e.g.
              not yet consumed at the kill) fills on the next bar after it
              arrives, not on the backtest's. Both are therefore killed
              between steps, once
              the bars published so far have been read and their fills are
              reported (quiesce(), from pipeline.py), and the replay holds
              until the restarted process reads md.bars again (a WARM probe
              bar seen on its /metrics: qb_exec_bars_total, or qb_risk_marks_total
              after an order request that loads the probe account).
  broker ID   qb-bus's POST /brokers/ID/down for 0.5-3 s (ID 0: all three
              for 1 s), then up; the replay goes on meanwhile. The outage
              starts between steps, quiesced (QB_CHAOS_OUTAGE_ANYTIME=1: at
              once). An outage that holds the signal's own bar back from
              qb-execution's md.bars reader (qb-features already had it)
              used to fill the order on that bar, one bar early; the order's
              not_before (the signal's bar) now makes the paper simulator
              wait for that bar.
  redis       Redis stopped (SHUTDOWN NOSAVE) for 30 s, then started again on
              its port; the replay goes on meanwhile.
  pg          PostgreSQL restarted (pg_ctl restart -m fast, as stack.sh runs
              it) between steps, quiesced like a kill of qb-risk; every
              service that died of it is restarted before the replay goes on.
A qb-bus restart would lose every topic (it keeps them in memory): broker
outages stand for it. finish() waits for every outage to end and every
service to be ready. Nothing here asserts timing; it only waits."""
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

E = os.environ
sys.path.insert(0, os.path.join(E["QB_ROOT"], "tests", "harness"))
from free_port import free_port  # noqa: E402 - below the ephemeral range: the api port survives restarts
PGBIN = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin")
                           for v in (os.listdir("/usr/lib/postgresql")
                                     if os.path.isdir("/usr/lib/postgresql") else []))
               if os.path.isdir(d))


def log(msg):
    print("  chaos: " + msg, flush=True)



def http(method, url, timeout=5):
    try:
        r = urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except Exception:  # noqa: BLE001 - connection refused, reset, time-out: "not answering"
        return 0, ""


class Service:
    READY = re.compile(r"ready: .*admin port (\d+)")

    def __init__(self, name, env, sup):
        self.name, self.env, self.sup = name, env, sup
        self.proc, self.starts, self.port = None, 0, None
        self.down = False  # killed on purpose, restart pending

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.sup.t, "%s.%d.log" % (self.name, self.starts))
        env = dict(E)
        env.update({"QB_PG_DSN": E["API_DSN"], "QB_SQL_DIR": os.path.join(E["QB_ROOT"], "sql"),
                    "QB_ADMIN_PORT": "0", "QB_ADMIN_BIND": "127.0.0.1", "QB_LOG_LEVEL": "info"})
        env.update(self.env)
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen([os.path.join(self.sup.bin, self.name)], env=env,
                                         stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        with open(os.path.join(self.sup.t, "chaos.pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)
        self.port = None
        self.down = False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.down = True
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def ready(self):
        """The ready line is in this start's log and /readyz answers 200."""
        if not self.alive():
            return False
        if self.port is None:
            try:
                m = self.READY.search(open(self.log, errors="replace").read())
            except OSError:
                m = None
            if not m:
                return False
            self.port = int(m.group(1))
        return http("GET", "http://127.0.0.1:%d/readyz" % self.port)[0] == 200

    def wait_ready(self, seconds=120):
        end = time.time() + seconds
        while time.time() < end:
            if self.ready():
                return True
            if not self.alive() and not self.down:
                self.sup.unplanned(self)
            time.sleep(0.05)
        raise RuntimeError("%s not ready after %d s (log %s)" % (self.name, seconds, self.log))

    def metric(self, name):
        if self.port is None:
            return None
        st, body = http("GET", "http://127.0.0.1:%d/metrics" % self.port)
        if st != 200:
            return None
        tot = None
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                tot = (tot or 0) + float(line.rsplit(" ", 1)[1])
        return tot


class Supervisor:
    def __init__(self):
        self.t, self.bin = E["PIPE_T"], E["QB_BIN_DIR"]
        self.lock = threading.RLock()
        self.unplanned_exits = []
        self.svcs = {}
        api_port = free_port()
        self.api_url = "http://127.0.0.1:%d" % api_port
        self.svcs["qb-api"] = Service("qb-api", {
            "QB_API_PORT": str(api_port), "QB_API_BIND": "127.0.0.1",
            "QB_API_ADMIN_PASSWORD": E["API_ADMIN_PW"], "QB_API_PBKDF2_ITER": "1000",
            "QB_API_JWT_SECRETS": E["API_JWT"],
            "QB_API_STATIC_DIR": os.path.join(E["QB_ROOT"], "web")}, self)
        for line in open(E["PIPE_SERVICES_FILE"]):
            w = line.split()
            if w:
                self.svcs[w[0]] = Service(w[0], dict(x.split("=", 1) for x in w[1:]), self)
        for s in self.svcs.values():
            s.start()
        for s in self.svcs.values():
            s.wait_ready()
        self.stop_watch = threading.Event()
        threading.Thread(target=self.watch, daemon=True).start()

    def unplanned(self, s):
        with self.lock:
            if s.alive() or s.down:
                return
            rc = s.proc.returncode
            lines = open(s.log, errors="replace").read().splitlines()
            # its own errors first (librdkafka's connection errors drown them)
            tail = [x for x in lines if '"level":"error"' in x and '"msg":"rdkafka' not in x][:2]
            tail += lines[-2:]
            self.unplanned_exits.append((s.name, rc))
            log("unplanned exit of %s (status %s): %s; restarting" % (s.name, rc, " | ".join(tail)))
            s.start()

    def watch(self):
        while not self.stop_watch.wait(0.5):
            for s in list(self.svcs.values()):
                if not s.down and not s.alive():
                    self.unplanned(s)

    def stop(self):
        self.stop_watch.set()
        for s in self.svcs.values():
            if s.alive():
                os.kill(s.proc.pid, signal.SIGKILL)
                s.proc.wait()

    def sanitizer_reports(self):
        bad = []
        for f in sorted(os.listdir(self.t)):
            if f.endswith(".log") and f.split(".")[0] in self.svcs:
                txt = open(os.path.join(self.t, f), errors="replace").read()
                if re.search(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error:", txt):
                    bad.append(f)
        return bad


class Chaos:
    QUIESCED = ("qb-risk", "qb-execution")

    def __init__(self, sup, nbars, quiesce, probe):
        self.sup, self.quiesce, self.probe = sup, quiesce, probe
        self.long = E.get("QB_CHAOS_LONG", "") not in ("", "0")
        self.outage_anytime = E.get("QB_CHAOS_OUTAGE_ANYTIME", "") not in ("", "0")
        seed = E.get("QB_CHAOS_SEED") or str(random.SystemRandom().randrange(1, 2 ** 31))
        self.seed = int(seed)
        rng = random.Random(self.seed)
        nkill = int(E.get("QB_CHAOS_KILLS") or (60 if self.long else 12))
        nbroker = 15 if self.long else 4
        names = sorted(sup.svcs)
        victims = names[:]
        rng.shuffle(victims)  # each service at least once, then at random
        victims = (victims + [rng.choice(names) for _ in range(nkill)])[:nkill]
        ev = [(int(nbars * rng.uniform(0.02, 0.95)), "kill", v) for v in victims]
        ev += [(int(nbars * rng.uniform(0.02, 0.95)), "broker", rng.choice([0, 1, 2, 3]))
               for _ in range(nbroker)]
        ev.append((int(nbars * rng.uniform(0.05, 0.3)), "redis", None))
        ev.append((int(nbars * rng.uniform(0.4, 0.7)), "pg", None))
        self.events = sorted(ev, key=lambda x: (x[0], x[1], str(x[2])))
        self.rng = rng
        self.threads = []
        self.done = {"kill": 0, "broker": 0, "redis": 0, "pg": 0}
        self.kills = {}
        self.stack = E["QB_STACK_DIR"]
        self.bus_admin = "http://127.0.0.1:%s" % re.search(
            r"admin port (\d+)", open(os.path.join(self.stack, "bus.log")).read()).group(1)
        print("QB_CHAOS_SEED=%d (%s mode: %d kills, %d broker outages, Redis 30 s, PostgreSQL "
              "restart, over %d bars)" % (self.seed, "long" if self.long else "default", nkill,
                                         nbroker, nbars), flush=True)

    # ---- the events ------------------------------------------------------------------------------
    def before_step(self, i):
        while self.events and self.events[0][0] <= i:
            _, kind, arg = self.events.pop(0)
            getattr(self, "do_" + kind)(arg, i)
            self.done[kind] += 1

    def do_kill(self, name, i):
        s = self.sup.svcs[name]
        self.kills[name] = self.kills.get(name, 0) + 1
        if name in self.QUIESCED:
            self.quiesce()
            s.kill()
            log("bar %d: kill -9 %s (quiesced); restarting" % (i, name))
            s.start()
            s.wait_ready()
            self.reading(s)
            return
        s.kill()
        delay = self.rng.uniform(0, 2)
        log("bar %d: kill -9 %s; restart in %.1f s" % (i, name, delay))

        def later():
            time.sleep(delay)
            s.start()
        self.spawn(later)

    def reading(self, s):
        """The restarted qb-risk / qb-execution reads md.bars again: its reader starts at the end
        (resolved lazily), so a WARM probe bar must show on its /metrics before we go on."""
        m = "qb_exec_bars_total" if s.name == "qb-execution" else "qb_risk_marks_total"
        for _ in range(60):
            before = s.metric(m) or 0
            # qb-risk marks the positions of the accounts it holds: an order request of the
            # probe account (a WARM share, filled on the next probe bar) loads it
            self.probe(s.name == "qb-risk")
            end = time.time() + 1
            while time.time() < end:
                if (s.metric(m) or 0) > before:
                    return
                time.sleep(0.02)
        raise RuntimeError("%s does not read md.bars after its restart" % s.name)

    def do_broker(self, b, i):
        ids, secs = ([1, 2, 3], 1.0) if b == 0 else ([b], self.rng.uniform(0.5, 3))
        if not self.outage_anytime:
            self.quiesce()
        log("bar %d: broker%s %s down for %.1f s" % (i, "s" if b == 0 else "",
                                                     ",".join(map(str, ids)), secs))

        def run():
            for k in ids:
                st = http("POST", "%s/brokers/%d/down" % (self.bus_admin, k))[0]
                if st != 200:
                    log("broker %d down: HTTP %d" % (k, st))
            time.sleep(secs)
            for k in ids:
                for _ in range(50):
                    if http("POST", "%s/brokers/%d/up" % (self.bus_admin, k))[0] == 200:
                        break
                    time.sleep(0.1)
        self.spawn(run)

    def do_redis(self, _, i):
        port = open(os.path.join(self.stack, "redis.port")).read().strip()
        log("bar %d: Redis stopped for 30 s" % i)

        def run():
            subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True)
            time.sleep(30)
            rd = os.path.join(self.stack, "redis")
            subprocess.run(["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--daemonize", "yes", "--pidfile",
                            os.path.join(rd, "redis.pid"), "--logfile",
                            os.path.join(rd, "redis.log"), "--dir", rd], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            for _ in range(100):
                if subprocess.run(["redis-cli", "-p", port, "ping"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            log("Redis back")
        self.spawn(run)

    def do_pg(self, _, i):
        self.quiesce()
        data = os.path.join(self.stack, "pg", "data")
        cmd = [os.path.join(PGBIN[-1], "pg_ctl"), "-D", data, "-l",
               os.path.join(self.stack, "pg", "server.log"), "-m", "fast", "-w", "-t", "60",
               "restart"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        log("bar %d: PostgreSQL restart" % i)
        # no pipes: the new postmaster would hold them open
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        # The services notice the lost connections and some stop: qb-execution checks its
        # leader lock every 5 s and exits when the new session does not hold it. Wait past
        # that (a reconnect + two checks) so it has died and been restarted BEFORE the replay
        # goes on: its md.bars reader restarts at the end of the topic, so a restart while
        # bars flow would miss bars (a paper order would fill on a later bar).
        time.sleep(15)
        for s in self.sup.svcs.values():
            s.wait_ready()
        for name in self.QUIESCED:
            self.reading(self.sup.svcs[name])

    def spawn(self, fn):
        th = threading.Thread(target=fn, daemon=True)
        th.start()
        self.threads.append(th)

    def finish(self):
        """The events not reached yet run now; then wait for every outage to end and every
        service to be ready."""
        self.before_step(1 << 62)
        for th in self.threads:
            th.join()
        for s in self.sup.svcs.values():
            s.wait_ready()
        for name in self.QUIESCED:
            self.reading(self.sup.svcs[name])
        log("done: %s; kills %s; unplanned exits %s" % (
            self.done, dict(sorted(self.kills.items())), self.sup.unplanned_exits or "none"))
