#!/usr/bin/env python3
"""Side-by-side benchmark of the supervisor and its peers (method: bench/README.md).

Every front serves the same tiny app (samples/HelloApi: GET / -> 12 bytes), Release build:
  app-alone         one Kestrel process on TCP: the ceiling
  supervisor        the supervisor with 2 workers
  nginx             nginx (worker_processes auto) -> 2 workers over Unix sockets (keepalive 256, HTTP/1.1)
  haproxy-h1        HAProxy -> 2 workers over Unix sockets (http-reuse always)
  haproxy-h2        HAProxy -> 2 HTTP/2-only workers over Unix sockets (proto h2): its best configuration
  gunicorn-sync     Gunicorn, sync workers (2 x cores + 1), trivial WSGI app
  gunicorn-gthread  Gunicorn, gthread workers (2 x cores + 1) x 4 threads
  supervisor-kernel the supervisor with 2 workers and --balancer kernel: the workers accept the clients
  supervisor-handoff the supervisor with 2 workers and --balancer handoff: it accepts each connection and
                    hands it to the worker with the fewest, which serves it
Load: wrk -t1 at -c64 and -c256, each front warmed up first, fronts interleaved with the order rotated
every round. Reported: medians, ratios to the app alone and supervisor/peer, p50/p99, errors, CPU time
per request of each front and of the workers behind it, the fronts' RSS at start, under load and
settled after load, and the supervisor's cold start. Loopback only; every run is bounded.
"""
import argparse
import datetime
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
PORTS = {
    "app-alone": 9101,
    "supervisor": 9102,
    "nginx": 9103,
    "haproxy-h1": 9104,
    "haproxy-h2": 9105,
    "gunicorn-sync": 9106,
    "gunicorn-gthread": 9107,
    "supervisor-kernel": 9108,
    "supervisor-handoff": 9109,
}
# Supervisors: their own process is the front, their children the workers.
SUPERVISORS = ("supervisor", "supervisor-kernel", "supervisor-handoff")
PEER_WORKERS = 2
SETTLE_SECONDS = 15
# The modes in which only the workers see the requests: each run's share per worker comes from `supervisor status`.
WORKER_COUNTED = {"supervisor-kernel": WORK / "sockets" / "kernel", "supervisor-handoff": WORK / "sockets" / "handoff"}


class Fleet:
    """
    Every process the benchmark starts, all stopped at the end. Each gets its own process group (to
    stop it with its forks) but they all stay in this script's session, and wrk runs in a session of
    its own. Linux's autogroup scheduling (on by default) gives every session an equal share of the
    CPU: had each process its own session, as they once did here, a peer's front and each of its
    workers would be three groups competing with one another, while the supervisor and its workers
    are one. Measured: that arrangement alone made HAProxy-h2's workers cost 21-25 us per request
    instead of 7-9, and its req/s fall by a third. One session for the fleet puts whichever front is
    under load in one group with its workers, as the supervisor is, and wrk in another.
    """

    def __init__(self):
        self.processes = {}

    def start(self, name, command, env=None, cwd=None):
        log = open(WORK / "logs" / f"{name}.log", "w")
        process = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=cwd,
                                   stdout=log, stderr=subprocess.STDOUT, process_group=0)
        self.processes[name] = process
        return process

    def stop_all(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def run(command, **kwargs):
    return subprocess.run(command, check=True, text=True, capture_output=True, **kwargs)


def wait_for_200(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"nothing answered 200 on port {port} within {timeout} s")


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mb(pid):
    """Proportional set size: shared pages (the .NET framework files the workers map too) split among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid):
    """RSS of a process and its descendants (nginx, HAProxy and Gunicorn fork workers)."""
    total = rss_mb(pid)
    for child in children(pid):
        total += tree_rss_mb(child)
    return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants(pid):
    return [pid] + [p for child in children(pid) for p in descendants(child)]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU time of the processes (the fields after the command name, which may hold spaces)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLOCK_TICKS


PEER_WORKER_PROTOCOL = {"nginx": "h1", "haproxy-h1": "h1", "haproxy-h2": "h2"}


def cpu_groups(front, pids, peer_workers):
    """(the front's processes, the workers' processes) for CPU accounting; the app alone has no workers."""
    pid = pids[front]
    if front in PEER_WORKER_PROTOCOL:
        return descendants(pid), peer_workers[PEER_WORKER_PROTOCOL[front]]
    if front in SUPERVISORS or front.startswith("gunicorn"):
        return [pid], descendants(pid)[1:]  # the workers are its children
    return descendants(pid), []


def build():
    print("building (Release)...", flush=True)
    run(["dotnet", "publish", str(ROOT / "supervisor"), "-c", "Release", "-o", str(WORK / "supervisor"), "--nologo"])
    run(["dotnet", "publish", str(ROOT / "samples" / "HelloApi"), "-c", "Release", "-o", str(WORK / "helloapi"), "--nologo"])


def start_peer_workers(fleet, protocol):
    """Two copies of the app on Unix sockets, fronted by nginx and HAProxy: their sockets and pids."""
    sockets, pids = [], []
    for index in range(PEER_WORKERS):
        socket_path = WORK / "sockets" / f"{protocol}-{index}.sock"
        env = {"ASPNETCORE_URLS": f"http://unix:{socket_path}"}
        if protocol == "h2":
            env["Kestrel__EndpointDefaults__Protocols"] = "Http2"
        fleet.start(f"workers-{protocol}-{index}", ["dotnet", str(WORK / "helloapi" / "HelloApi.dll")], env=env, cwd=WORK / "helloapi")
        sockets.append(socket_path)
        pids.append(fleet.processes[f"workers-{protocol}-{index}"].pid)
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in sockets):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{protocol} peer workers did not start")
        time.sleep(0.05)
    return sockets, pids


def nginx_config(sockets):
    servers = "\n".join(f"    server unix:{path};" for path in sockets)
    temp = WORK / "nginx"
    # nginx started by root drops its workers to www-data, which could not open the workers' sockets.
    user = pwd.getpwuid(os.getuid()).pw_name
    # 'auto' (2 here): measured side by side with the fleet in one session, 22-37k req/s against
    # 21-26k for one worker process at -c64, and 25-29k against 17-22k at -c256. (When every process
    # had its own session, one worker process looked best: its p99 was 19 ms against 116-142.)
    return f"""worker_processes auto;
user {user};
pid {temp}/nginx.pid;
error_log {WORK}/logs/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  upstream workers {{
{servers}
    keepalive 256;
  }}
  server {{
    listen 127.0.0.1:{PORTS['nginx']};
    location / {{
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # What the app needs to see the client, as the supervisor passes it (and as Microsoft's guide
      # for nginx in front of Kestrel sets it): the Host asked for, and X-Forwarded-For/-Proto/-Host.
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }}
  }}
}}
"""


def haproxy_config(port, sockets, h2):
    proto = " proto h2" if h2 else ""
    # HAProxy says :scheme https to an h2 server unless the URI is absolute; Kestrel rejects the mismatch.
    scheme_fix = "  http-request set-uri http://%[req.hdr(host)]%[pathq]\n" if h2 else ""
    servers = "\n".join(f"  server w{i} unix@{path}{proto}" for i, path in enumerate(sockets))
    # The client's address, scheme and host passed on as the supervisor passes them (see nginx_config).
    return f"""global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend front
  bind 127.0.0.1:{port}
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend workers
backend workers
  balance leastconn
  http-reuse always
{scheme_fix}{servers}
"""


WSGI_APP = '''def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"Hello World!"]
'''


def start_supervisor(fleet):
    """Starts the supervisor and measures its cold start: launch -> first 200 -> all workers ready."""
    launched = time.monotonic()
    process = fleet.start("supervisor", [str(WORK / "supervisor" / "supervisor"), "--app", str(WORK / "helloapi" / "HelloApi.dll"),
                                         "--workers", "2", "--bind", f"127.0.0.1:{PORTS['supervisor']}"])
    first_200 = wait_for_200(PORTS["supervisor"])
    log = WORK / "logs" / "supervisor.log"
    deadline = time.monotonic() + 60
    while "All 2 workers ready" not in log.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError("the supervisor's workers did not become ready")
        time.sleep(0.01)
    all_ready = time.monotonic()
    return process, {"first_200_ms": (first_200 - launched) * 1000, "all_ready_ms": (all_ready - launched) * 1000}


def start_fronts(fleet):
    """Starts every front but the supervisor: their pids, and the pids of the peers' workers by protocol."""
    pids = {}
    fleet.start("app-alone", ["dotnet", str(WORK / "helloapi" / "HelloApi.dll")],
                env={"ASPNETCORE_URLS": f"http://127.0.0.1:{PORTS['app-alone']}"}, cwd=WORK / "helloapi")
    h1, h1_pids = start_peer_workers(fleet, "h1")
    h2, h2_pids = start_peer_workers(fleet, "h2")

    (WORK / "nginx").mkdir(exist_ok=True)
    (WORK / "nginx.conf").write_text(nginx_config(h1))
    fleet.start("nginx", ["nginx", "-c", str(WORK / "nginx.conf"), "-g", "daemon off;"])
    (WORK / "haproxy-h1.cfg").write_text(haproxy_config(PORTS["haproxy-h1"], h1, h2=False))
    fleet.start("haproxy-h1", ["haproxy", "-db", "-f", str(WORK / "haproxy-h1.cfg")])
    (WORK / "haproxy-h2.cfg").write_text(haproxy_config(PORTS["haproxy-h2"], h2, h2=True))
    fleet.start("haproxy-h2", ["haproxy", "-db", "-f", str(WORK / "haproxy-h2.cfg")])

    (WORK / "wsgi_app.py").write_text(WSGI_APP)
    workers = str(2 * os.cpu_count() + 1)
    fleet.start("gunicorn-sync", ["gunicorn", "-w", workers, "-b", f"127.0.0.1:{PORTS['gunicorn-sync']}",
                                  "--log-level", "warning", "wsgi_app:app"], cwd=WORK)
    fleet.start("gunicorn-gthread", ["gunicorn", "-w", workers, "-k", "gthread", "--threads", "4",
                                     "-b", f"127.0.0.1:{PORTS['gunicorn-gthread']}", "--log-level", "warning", "wsgi_app:app"], cwd=WORK)
    # --balancer kernel: the workers accept the clients themselves on the socket the supervisor binds.
    # --balancer handoff: the supervisor accepts each connection and hands it to the worker with the fewest.
    for front, balancer in (("supervisor-kernel", "kernel"), ("supervisor-handoff", "handoff")):
        fleet.start(front, [str(WORK / "supervisor" / "supervisor"), "--app", str(WORK / "helloapi" / "HelloApi.dll"),
                            "--workers", "2", "--balancer", balancer, "--socket-dir", str(WORKER_COUNTED[front]),
                            "--bind", f"127.0.0.1:{PORTS[front]}"])
    for name, port in PORTS.items():
        wait_for_200(port)
        pids[name] = fleet.processes[name].pid
    return pids, {"h1": h1_pids, "h2": h2_pids}


WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(port, connections, seconds):
    # Its own session, so autogroup scheduling keeps the load generator apart from the fronts (see Fleet).
    output = run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                  f"http://127.0.0.1:{port}/"], timeout=seconds + 60, start_new_session=True).stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latencies = {percent: float(value) * scale[unit] for percent, value, unit in WRK_LATENCY.findall(output)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latencies.get("50", 0.0),
        "p99": latencies.get("99", 0.0),
        "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0),
        "requests": requests,
    }


def front_rss_mb(front, pid):
    """The supervisor's own process (its workers are the app, counted apart); the forks of the others."""
    return rss_mb(pid) if front in SUPERVISORS else tree_rss_mb(pid)


class RssSampler(threading.Thread):
    def __init__(self, front, pid):
        super().__init__(daemon=True)
        self.front, self.pid, self.peak, self.running = front, pid, 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, front_rss_mb(self.front, self.pid))
            time.sleep(0.1)


def worker_requests(front):
    """Requests each worker of a kernel- or handoff-mode supervisor has served, by pid (from `supervisor status --json`)."""
    output = run([str(WORK / "supervisor" / "supervisor"), "status", "--json", "--socket-dir", str(WORKER_COUNTED[front])]).stdout
    return {worker["pid"]: worker["requests"] for worker in json.loads(output)["pool"]}


def worker_cpu(pids):
    """Each worker's CPU seconds so far, by pid."""
    return {pid: cpu_seconds([pid]) for pid in pids}


def spread(before, after):
    """How far the busiest and the idlest worker are from the mean share of a run's requests (or CPU): 0.10 is ±10%."""
    served = [after[pid] - before.get(pid, 0) for pid in after]
    mean = sum(served) / len(served)
    return max(abs(count - mean) for count in served) / mean if mean else 0.0


def commit():
    try:
        return run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip()
    except subprocess.CalledProcessError:
        return "unknown"


def report(args, samples, memory, cold_start, supervisor_pss):
    fronts = list(PORTS)
    lines = [
        f"# Benchmark {datetime.date.today()} (commit {commit()}, {'quick' if args.quick else 'full'} mode)",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}. Load: `wrk -t1 -cN -d{args.seconds}s --latency`, "
        f"{args.rounds} interleaved round(s), order rotated; medians. Ratios are to the app alone (one Kestrel process)",
        "and, in the last column, the supervisor's req/s divided by the front's. Produced by `bench/run"
        + (" --quick" if args.quick else "") + "`.",
        "",
    ]
    median_rps = {key: statistics.median(s["rps"] for s in runs) for key, runs in samples.items()}
    median_p99 = {key: statistics.median(s["p99"] for s in runs) for key, runs in samples.items()}
    lines += ["## The supervisor against each front (req/s ratio; p99 ms, supervisor vs front)", "",
              "| front | " + " | ".join(f"-c{c} ratio | -c{c} p99" for c in args.connections) + " |",
              "|---|" + "---|---|" * len(args.connections)]
    for front in fronts:
        if front == "supervisor":
            continue
        cells = [f"{median_rps[('supervisor', c)] / median_rps[(front, c)]:.2f}x | "
                 f"{median_p99[('supervisor', c)]:.1f} vs {median_p99[(front, c)]:.1f}" for c in args.connections]
        lines.append(f"| {front} | " + " | ".join(cells) + " |")
    lines.append("")
    for connections in args.connections:
        base = statistics.median(s["rps"] for s in samples[("app-alone", connections)])
        sup = statistics.median(s["rps"] for s in samples[("supervisor", connections)])
        lines += [f"## -c{connections}", "",
                  "| front | req/s | ratio to app alone | p50 ms | p99 ms | errors | supervisor / front |",
                  "|---|---|---|---|---|---|---|"]
        for front in fronts:
            runs = samples[(front, connections)]
            rps = statistics.median(s["rps"] for s in runs)
            lines.append(f"| {front} | {rps:,.0f} | {rps / base:.2f} | {statistics.median(s['p50'] for s in runs):.2f} "
                         f"| {statistics.median(s['p99'] for s in runs):.2f} | {sum(s['errors'] for s in runs)} | {sup / rps:.2f} |")
        lines.append("")
    lines += ["## --balancer kernel and handoff: how evenly the workers share the requests", "",
              "Each run's requests per worker (from `supervisor status`), as the largest distance from an even share:",
              "0.10 means one worker served 10% more, or less, than half. In kernel mode the kernel gives each",
              "connection to whichever worker accepts it first; in handoff mode the supervisor gives it to the",
              "worker with the fewest open connections. wrk keeps its connections for the whole run. Beside it,",
              "the same measure of each worker's CPU time in the run: a worker that served less because it got",
              "less CPU shows the same spread in both.", "",
              "| front | connections | spread per run | median | CPU spread per run |", "|---|---|---|---|---|"]
    for front in WORKER_COUNTED:
        for connections in args.connections:
            runs = samples[(front, connections)]
            spreads = [s["spread"] for s in runs]
            cpu_spreads = ", ".join(f"{s['cpu_spread']:.2f}" for s in runs)
            lines.append(f"| {front} | -c{connections} | {', '.join(f'{x:.2f}' for x in spreads)} | {statistics.median(spreads):.2f} | {cpu_spreads} |")
    lines.append("")
    lines += ["## CPU time per request (µs, user + system, medians)", "",
              "Measured from /proc over each run: the front's own processes, and the workers behind it (the app's",
              "processes for the proxies; Gunicorn's workers are its app). On 2 cores shared by everything, the",
              "total decides the req/s once a front is bound by CPU rather than latency.", "",
              "| front | " + " | ".join(f"-c{c} front | -c{c} workers | -c{c} total" for c in args.connections) + " |",
              "|---|" + "---|---|---|" * len(args.connections)]
    for front in fronts:
        cells = []
        for connections in args.connections:
            runs = samples[(front, connections)]
            front_us = statistics.median(s["front_us"] for s in runs)
            workers_us = statistics.median(s["workers_us"] for s in runs)
            cells.append(f"{front_us:.1f} | {workers_us:.1f} | {front_us + workers_us:.1f}")
        lines.append(f"| {front} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["## Memory (RSS, MB)", "",
              "The supervisor's own process (its workers are copies of the app, ~70-100 MB each, as are the peers' workers);",
              "nginx and HAProxy with their forks; Gunicorn with its workers (which are the Python app itself).", "",
              f"| front | idle at start | peak under load | idle {SETTLE_SECONDS} s after the load |", "|---|---|---|---|"]
    for front in fronts:
        start, peak, settled = memory[front]
        lines.append(f"| {front} | {start:.0f} | {peak:.0f} | {settled:.0f} |")
    lines += ["", f"The supervisor's PSS at start (its share of pages it maps together with its workers): {supervisor_pss:.0f} MB.",
              "", "## Supervisor cold start", "",
              f"Launch to first 200: {cold_start['first_200_ms']:.0f} ms; launch to all 2 workers ready: {cold_start['all_ready_ms']:.0f} ms.", ""]
    return "\n".join(lines)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one 5-second round (about 2 minutes in all)")
    parser.add_argument("--no-build", action="store_true", help="reuse the last Release build in bench/.work")
    args = parser.parse_args()
    args.rounds, args.seconds = (1, 5) if args.quick else (3, 10)
    args.connections = [64, 256]

    if WORK.exists() and not args.no_build:
        shutil.rmtree(WORK)
    for sub in ("logs", "sockets"):
        (WORK / sub).mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        build()

    fleet = Fleet()
    try:
        # Cold start first, on a quiet machine.
        supervisor, cold_start = start_supervisor(fleet)
        pids, peer_workers = start_fronts(fleet)
        pids["supervisor"] = supervisor.pid
        fronts = list(PORTS)
        memory = {front: [front_rss_mb(front, pids[front]), 0.0, 0.0] for front in fronts}  # start, peak, settled
        supervisor_pss = pss_mb(pids["supervisor"])
        for front in fronts:
            wrk(PORTS[front], 64, 3)  # warm-up: JIT, connection pools, Python imports

        samples = {(front, c): [] for front in fronts for c in args.connections}
        for round_index in range(args.rounds):
            order = fronts[round_index % len(fronts):] + fronts[:round_index % len(fronts)]
            for connections in args.connections:
                for front in order:
                    sampler = RssSampler(front, pids[front])
                    front_pids, worker_pids = cpu_groups(front, pids, peer_workers)
                    cpu_before = cpu_seconds(front_pids), cpu_seconds(worker_pids)
                    served_before = worker_requests(front) if front in WORKER_COUNTED else None
                    workers_cpu_before = worker_cpu(served_before) if served_before is not None else None
                    sampler.start()
                    result = wrk(PORTS[front], connections, args.seconds)
                    sampler.running = False
                    sampler.join()
                    if served_before is not None:
                        time.sleep(1.2)  # the workers report what they served with each heartbeat, once a second
                        served_after = worker_requests(front)
                        result["spread"] = spread(served_before, served_after)
                        # Whether a worker that served less also had less CPU (the scheduler's share, not the balancer's).
                        result["cpu_spread"] = spread(workers_cpu_before, worker_cpu(served_after))
                    requests = max(result["requests"], 1)
                    result["front_us"] = (cpu_seconds(front_pids) - cpu_before[0]) * 1e6 / requests
                    result["workers_us"] = (cpu_seconds(worker_pids) - cpu_before[1]) * 1e6 / requests
                    memory[front][1] = max(memory[front][1], sampler.peak)
                    samples[(front, connections)].append(result)
                    print(f"round {round_index + 1} -c{connections} {front:17} {result['rps']:>10,.0f} req/s  "
                          f"p99 {result['p99']:.2f} ms  errors {result['errors']}  "
                          f"CPU/request {result['front_us']:.1f} + {result['workers_us']:.1f} us", flush=True)
        time.sleep(SETTLE_SECONDS)  # what each front keeps once the load is over
        for front in fronts:
            memory[front][2] = front_rss_mb(front, pids[front])
    finally:
        fleet.stop_all()

    text = report(args, samples, memory, cold_start, supervisor_pss)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.date.today()}-{commit()}{'-quick' if args.quick else ''}.md"
    path.write_text(text)
    print("\n" + text + f"\nwritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
