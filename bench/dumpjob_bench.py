"""dumpjob benchmark: dumpjob against the dump it wraps (`mysqldump > /dev/null`), the legacy
sequential pipeline (dump to file, gzip -6, aws s3 cp) and a peer, mydumper (2 threads,
compressed, then uploaded), at two dataset sizes.

Everything runs here, in one run, on private servers: a MariaDB of its own (the sandbox's seed at
DUMPJOB_BENCH_SCALE contracts, default 500,000 ≈ 1.1 GB of raw SQL; its data directory is kept in
DUMPJOB_BENCH_DIR, default /var/tmp/dumpjob-bench, so later runs skip the seeding; loopback ports
are picked free, so side-by-side benches and sandboxes do not meet) and a moto of its own. The
setup installs mydumper (Debian package) when it is missing. DUMPJOB_BENCH_ROUNDS (default 3)
interleaved rounds; the best time of each kind is kept, since other work on the machine only ever
slows a sample down. For each tool: wall time, CPU seconds (the process tree, the server, moto)
and peak RSS; for dumpjob also its own CPU seconds per GiB of raw dump (its process without its
mysqldump child and without the codec's worker time). Every published object is read back and
checked with `gzip -t` / `zstd -t`. The last line is

  bench: ratio_vs_mysqldump_gzip=X ratio_vs_mysqldump_zstd=Y ratio_vs_mydumper=Z gzip_size_vs_legacy=S
         own_cpu_s_per_gib=C peak_rss_mib=R raw_mib=N

(one line) and the exit status is 1 when a limit is missed: X ≤ 1.4 (the production setting, gzip
level 6), Y ≤ 1.25 (zstd level 1), Z ≤ 0.6 (dumpjob gzip vs mydumper + its upload), S ≤ 1.10
(dumpjob's gzip output vs the legacy gzip -6), C ≤ 2.0, R ≤ 128 and flat across the two dataset
sizes (also: vs the legacy pipeline ≤ 0.7).

`--profile` runs one production-setting dump under cProfile instead and prints where the main
thread's time goes and the CPU split of the run (process, mysqldump, codec)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import boto3
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import config as sandbox_config  # noqa: E402
from sandbox import mariadb, procs  # noqa: E402

SCALE = int(os.environ.get("DUMPJOB_BENCH_SCALE", "500000"))
ROUNDS = int(os.environ.get("DUMPJOB_BENCH_ROUNDS", "3"))
STATE = Path(os.environ.get("DUMPJOB_BENCH_DIR", "/var/tmp/dumpjob-bench"))
BUCKET = "bench"
REGION = sandbox_config.REGION
USER, PASSWORD = sandbox_config.LEGACY_DB_USER, sandbox_config.LEGACY_DB_PASSWORD
LEGACY_FLAGS = ["--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
                "--default-character-set=utf8mb4"]
DUMPJOB = str(REPO / ".venv" / "bin" / "dumpjob")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20
GIB = 1 << 30
LIMITS = {"ratio_vs_mysqldump_gzip": 1.4, "ratio_vs_mysqldump_zstd": 1.25, "ratio_vs_mydumper": 0.6,
          "gzip_size_vs_legacy": 1.10, "own_cpu_s_per_gib": 2.0, "peak_rss_mib": 128.0, "rss_growth_mib": 8.0,
          "ratio_vs_legacy_gzip": 0.7}
MYDUMPER_THREADS = 2


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclasses.dataclass
class Measure:
    name: str
    wall: float
    tree_cpu: float  # the measured process and the children it waited for
    server_cpu: float
    moto_cpu: float
    maxrss_mib: float
    extra: dict = dataclasses.field(default_factory=dict)


class Bench:
    def __init__(self):
        self.settings = dataclasses.replace(sandbox_config.load(), state=STATE, mariadb_port=free_port(), scale=SCALE)
        self.work = STATE / "work"
        self.moto: subprocess.Popen | None = None
        self.moto_url = ""
        self.checked = 0
        self.mydumper_bin = ""

    # -- setup -------------------------------------------------------------------------------------
    @staticmethod
    def peer() -> str:
        """mydumper, installed from Debian when missing."""
        found = shutil.which("mydumper")
        if found:
            return found
        say("installing the peer, mydumper (apt-get install mydumper)")
        proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "mydumper"],
                              capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("mydumper")
        if proc.returncode != 0 or not found:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            raise SystemExit(f"bench: cannot install mydumper (apt-get exited {proc.returncode}: {tail}); install the "
                             "Debian package mydumper as root, then run the bench again")
        return found

    def database(self) -> None:
        say(f"starting a private MariaDB on port {self.settings.mariadb_port} (data in {STATE}; the first run "
            f"seeds basis at scale {SCALE}, later runs reuse it)")
        t = time.perf_counter()
        mariadb.up(self.settings)  # seeds at `scale` when basis is empty
        counts = mariadb.row_counts(SCALE)
        have = mariadb.sql(self.settings, "SELECT COUNT(*) FROM basis.contracts; "
                                          "SELECT COUNT(*) FROM basis.access_logs")
        if have.split() != [str(counts["contracts"]), str(counts["access_logs"])]:
            say(f"reseeding basis at scale {SCALE}")
            mariadb.seed(self.settings, SCALE)
        say(f"database ready in {time.perf_counter() - t:.0f} s")

    def aws(self) -> dict[str, str]:
        port = free_port()
        self.moto_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.moto = subprocess.Popen([str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.wait_for(lambda: procs.port_open(port), "bench moto", timeout=60)
        # moto accepts any key: these are not credentials
        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        env.update(AWS_ENDPOINT_URL=self.moto_url, AWS_DEFAULT_REGION=REGION, DUMPJOB_NO_SYSLOG="1",
                   **{k.upper(): v for k, v in keys.items()})
        self.s3 = boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION, **keys)
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("secretsmanager", endpoint_url=self.moto_url, region_name=REGION, **keys).create_secret(
            Name="bench/basis", SecretString=json.dumps(
                         {"host": "127.0.0.1", "port": self.settings.mariadb_port, "username": USER,
                          "password": PASSWORD}))
        return env

    def files(self) -> tuple[str, str]:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        cnf = self.work / "client.cnf"
        fd = os.open(cnf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, f'[client]\nuser="{USER}"\npassword="{PASSWORD}"\nhost=127.0.0.1\n'
                     f"port={self.settings.mariadb_port}\nprotocol=TCP\n".encode())
        os.close(fd)
        # mydumper 0.10 reads its own group only
        fd = os.open(self.work / "mydumper.cnf", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, f'[mydumper]\nuser="{USER}"\npassword="{PASSWORD}"\nhost=127.0.0.1\n'
                     f"port={self.settings.mariadb_port}\n".encode())
        os.close(fd)
        base = {"kind": "mysqldump", "secret_id": "bench/basis", "databases": ["basis"], "progress_seconds": 30}
        jobs = {
            "gzip": {**base, "key": "dumps/basis_gzip_{date:%Y%m%d}.sql.gz"},
            "zstd": {**base, "key": "dumps/basis_zstd_{date:%Y%m%d}.sql.zst",
                     "compression": {"type": "zstd", "level": 1}},
            "half": {**base, "tables": ["access_logs"], "key": "dumps/basis_half_{date:%Y%m%d}.sql.gz"},
        }
        config = self.work / "jobs.yml"
        config.write_text(yaml.safe_dump({"defaults": {"bucket": BUCKET, "lock_dir": str(self.work / "lock"),
                                                       "work_dir": str(self.work)}, "jobs": jobs}))
        return str(cnf), str(config)

    # -- measuring -----------------------------------------------------------------------------------
    def measure(self, name: str, argv: list[str], env: dict, stdout=subprocess.DEVNULL) -> Measure:
        server = procs.pid_alive(self.settings.pidfile(mariadb.NAME))
        s0, m0 = cpu_seconds(server), cpu_seconds(self.moto.pid)
        with tempfile.TemporaryFile() as err:
            t0, spawned = time.perf_counter(), time.time()
            proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            err_lines = err.read().decode(errors="replace").splitlines()
        code = proc.returncode
        if code != 0:
            raise SystemExit(f"bench: {name} failed (exit {code}): {' | '.join(err_lines[-3:])}")
        return Measure(name, wall, usage.ru_utime + usage.ru_stime, cpu_seconds(server) - s0,
                       cpu_seconds(self.moto.pid) - m0, usage.ru_maxrss / 1024,
                       {"stderr": err_lines, "spawned": spawned})

    def dumpjob(self, job: str, config: str, env: dict, day: str) -> Measure:
        m = self.measure(f"dumpjob {job}", [DUMPJOB, "run", job, "--config", config, "--date", day], env)
        summary = json.loads(m.extra["stderr"][-1])
        m.extra.update(summary=summary, compressed=summary["compressed_bytes"], **serial_ends(m))
        self.check_object(summary["key"])
        self.s3.delete_object(Bucket=BUCKET, Key=summary["key"])
        self.s3.delete_object(Bucket=BUCKET, Key=summary["key"] + ".manifest.json")
        return m

    def check_object(self, key: str) -> None:
        """The published object decompresses with the system's gzip -t / zstd -t (read back from S3)."""
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        head = body.read(4)
        tool = ["zstd", "-q", "-t"] if head.startswith(b"\x28\xb5\x2f\xfd") else ["gzip", "-t"]
        proc = subprocess.Popen(tool, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(head)
            for chunk in iter(lambda: body.read(1 << 20), b""):
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise SystemExit(f"bench: s3://{BUCKET}/{key} fails {' '.join(tool)}: {err}")
        self.checked += 1

    def upload_tree(self, name: str, directory: Path, prefix: str, env: dict) -> Measure:
        aws = shutil.which("aws")
        if aws:
            return self.measure(name, [aws, "s3", "cp", "--quiet", "--recursive", "--endpoint-url", self.moto_url,
                                       str(directory), f"s3://{BUCKET}/{prefix}/"], env)
        return self.measure(name + " (boto3, as aws s3 cp)", [sys.executable, "-c", (
            "import boto3,os,sys\nfrom concurrent.futures import ThreadPoolExecutor\n"
            "s3=boto3.client('s3'); d=sys.argv[1]\n"
            "with ThreadPoolExecutor(10) as p:\n"
            " list(p.map(lambda f: s3.upload_file(os.path.join(d,f), sys.argv[2], sys.argv[3]+'/'+f), os.listdir(d)))"),
            str(directory), BUCKET, prefix], env)

    def mydumper(self, env: dict) -> tuple[float, list[Measure]]:
        """The peer: mydumper with 2 threads and compression into a directory, then that directory uploaded."""
        out = self.work / "mydumper"
        if out.exists():
            shutil.rmtree(out)
        dump = self.measure(f"mydumper -t {MYDUMPER_THREADS} -c", [
            self.mydumper_bin, f"--defaults-file={self.work / 'mydumper.cnf'}", "--database=basis",
            f"--threads={MYDUMPER_THREADS}", "--compress",
            "--trx-consistency-only", "--triggers", "--events", "--routines", "--verbose=1",
            f"--outputdir={out}"], env)
        up = self.upload_tree("mydumper upload (aws s3 cp)", out, "mydumper", env)
        files = sorted(p for p in out.iterdir() if p.is_file())
        compressed = sum(p.stat().st_size for p in files)
        if not any(p.name.endswith(".sql.gz") and "-schema" not in p.name for p in files):
            raise SystemExit(f"bench: mydumper wrote no table data into {out}")
        for p in files:
            if p.name.endswith(".gz"):  # its small `metadata` file is plain text
                self.check_object(f"mydumper/{p.name}")
            self.s3.delete_object(Bucket=BUCKET, Key=f"mydumper/{p.name}")
        shutil.rmtree(out)
        for m in (dump, up):
            m.extra["compressed"] = compressed
        return dump.wall + up.wall, [dump, up]

    def legacy(self, cnf: str, env: dict) -> tuple[float, list[Measure]]:
        path = self.work / "basis_legacy.sql"
        with open(path, "wb") as out:
            dump = self.measure("legacy mysqldump > file", ["mysqldump", f"--defaults-extra-file={cnf}",
                                                            *LEGACY_FLAGS, "basis"], env, stdout=out)
        gz = self.measure("legacy gzip", ["gzip", "-f", str(path)], env)
        aws = shutil.which("aws")
        if aws:
            up = self.measure("legacy aws s3 cp", [aws, "s3", "cp", "--quiet", "--endpoint-url", self.moto_url,
                                                   f"{path}.gz", f"s3://{BUCKET}/dumps/basis_legacy.sql.gz"], env)
        else:
            up = self.measure("legacy upload (boto3, as aws s3 cp)", [sys.executable, "-c", (
                "import boto3,sys; boto3.client('s3').upload_file(sys.argv[1], sys.argv[2], sys.argv[3])"),
                f"{path}.gz", BUCKET, "dumps/basis_legacy.sql.gz"], env)
        compressed = Path(f"{path}.gz").stat().st_size
        Path(f"{path}.gz").unlink()
        self.check_object("dumps/basis_legacy.sql.gz")
        self.s3.delete_object(Bucket=BUCKET, Key="dumps/basis_legacy.sql.gz")
        steps = [dump, gz, up]
        for m in steps:
            m.extra["compressed"] = compressed
        return sum(m.wall for m in steps), steps

    def stop(self) -> None:
        if self.moto is not None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
        mariadb.down(self.settings)
        if self.work.exists():
            shutil.rmtree(self.work)


def serial_ends(m: Measure) -> dict[str, float]:
    """From a dumpjob run's log: the seconds from its spawn to mysqldump's start (`startup`: Python,
    the secret, the login, the S3 checks) and from the end of the stream to its exit (`publishing`:
    the manifest, completing the upload). Neither overlaps the dump."""
    at = {}
    for line in m.extra["stderr"]:
        record = json.loads(line)
        at.setdefault(record["event"], datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp())
    return {"startup": at["mysqldump"] - m.extra["spawned"], "publishing": m.extra["spawned"] + m.wall - at["streamed"]}


def needs(name: str, m: Measure, limit_wall: float, baseline: Measure, cores: int) -> str:
    """What a run's limit asks of the machine: its CPU seconds inside the limit's wall time, i.e.
    the cores busy on average, and on the dump's stretch once the serial start-up and publishing
    (about one core each) are taken out; against the cores the bare dump keeps busy."""
    serial = m.extra["startup"] + m.extra["publishing"]
    middle = (total_cpu(m) - serial) / (limit_wall - serial) if limit_wall > serial else float("inf")
    return (f"{name}: {total_cpu(m):.1f} CPU-s in ≤ {limit_wall:.2f} s needs {total_cpu(m) / limit_wall:.2f} of the "
            f"{cores} cores busy on average; with its start-up ({m.extra['startup']:.2f} s) and publishing "
            f"({m.extra['publishing']:.2f} s) at one core, {middle:.2f} while the dump streams; the bare dump keeps "
            f"{total_cpu(baseline) / baseline.wall:.2f} busy, and this run had {total_cpu(m) / m.wall:.2f}")


def describe(m: Measure) -> str:
    return (f"{m.name:<36} wall {m.wall:6.2f} s  cpu: process tree {m.tree_cpu:5.1f} s, server {m.server_cpu:5.1f} s, "
            f"moto {m.moto_cpu:4.1f} s  peak RSS {m.maxrss_mib:5.0f} MiB")


def bound(name: str, wall: float, cpu: float, cores: int) -> str:
    """What limits a run: all its CPU work shared by the cores, against the wall time it took."""
    return (f"{name}: {cpu:.1f} CPU-s on {cores} cores ⇒ wall ≥ {cpu / cores:.1f} s; measured {wall:.1f} s, "
            f"i.e. it had {cpu / wall:.2f} of the {cores} cores")


def best(samples: list[Measure]) -> Measure:
    return min(samples, key=lambda m: m.wall)


def own_cpu(m: Measure) -> float | None:
    """dumpjob's own CPU seconds: its process without its children (mysqldump) and the codec's workers."""
    cpu = m.extra["summary"].get("cpu_seconds") or {}
    if cpu.get("codec") is None:
        return None
    return cpu["process"] - cpu["codec"]


def total_cpu(m: Measure) -> float:
    return m.tree_cpu + m.server_cpu + m.moto_cpu


def profile(bench: Bench, config: str, env: dict) -> int:
    """One production-setting dump under cProfile: where the main thread's time goes, and the run's CPU split."""
    import pstats

    out = bench.work / "dumpjob.prof"
    # The main thread's CPU time (not wall time, which waiting on the pipe and the GIL would fill)
    code = ("import cProfile, sys, time\nfrom dumpjob.cli import main\nprofiler = cProfile.Profile(time.thread_time)\n"
            "try:\n    profiler.runcall(main, sys.argv[2:])\nfinally:\n    profiler.dump_stats(sys.argv[1])")
    m = bench.measure("dumpjob gzip (cProfile)", [str(REPO / ".venv" / "bin" / "python"), "-c", code, str(out),
                                                  "run", "gzip", "--config", config, "--date", "2026-07-01"], env)
    summary = json.loads(m.extra["stderr"][-1])
    bench.s3.delete_object(Bucket=BUCKET, Key=summary["key"])
    bench.s3.delete_object(Bucket=BUCKET, Key=summary["key"] + ".manifest.json")
    cpu = summary["cpu_seconds"]
    gib = summary["raw_bytes"] / GIB
    say(describe(m))
    say(f"{summary['raw_bytes'] / MIB:.0f} MiB raw; CPU-s/GiB: process {cpu['process'] / gib:.2f} (codec "
        f"{(cpu['codec'] or 0) / gib:.2f}, own {(cpu['process'] - (cpu['codec'] or 0)) / gib:.2f}: main thread "
        f"{cpu['main_thread'] / gib:.2f}, upload and other threads "
        f"{(cpu['process'] - (cpu['codec'] or 0) - cpu['main_thread']) / gib:.2f}), mysqldump "
        f"{cpu['children'] / gib:.2f}; moto {m.moto_cpu / gib:.2f}")
    say("main thread, by own CPU time (cProfile with a thread-CPU clock; other threads are not profiled):")
    stats = pstats.Stats(str(out), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true", help="profile one production-setting dump instead")
    args = parser.parse_args()
    # A stopped bench stops its servers too (the finally below), instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cores = os.cpu_count() or 1
    bench = Bench()
    STATE.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    runs: dict[str, list] = {"baseline": [], "legacy": [], "gzip": [], "zstd": [], "mydumper": []}
    try:
        if not args.profile:
            bench.mydumper_bin = bench.peer()
        bench.database()
        env = bench.aws()
        cnf, config = bench.files()
        if args.profile:
            return profile(bench, config, env)
        dump_argv = ["mysqldump", f"--defaults-extra-file={cnf}", "--single-transaction", "--quick",
                     "--no-tablespaces", "--routines", "--events", "--triggers", "--hex-blob",
                     "--default-character-set=utf8mb4", "basis"]
        say("warming the server's caches with one unmeasured dump")
        bench.measure("warm-up", dump_argv, env)
        # Rounds interleaved (the order alternates), best of each kind: other work on the machine only ever
        # slows a sample down.
        for i in range(ROUNDS):
            day = f"2026-06-{i + 1:02d}"
            steps = [("baseline", lambda: bench.measure("mysqldump > /dev/null", dump_argv, env)),
                     ("legacy", lambda: bench.legacy(cnf, env)),
                     ("gzip", lambda d=day: bench.dumpjob("gzip", config, env, d)),
                     ("zstd", lambda d=day: bench.dumpjob("zstd", config, env, d)),
                     ("mydumper", lambda: bench.mydumper(env))]
            for kind, step in steps if i % 2 == 0 else reversed(steps):
                runs[kind].append(step())
            say(f"round {i + 1}/{ROUNDS}: mysqldump {runs['baseline'][-1].wall:.1f} s, legacy "
                f"{runs['legacy'][-1][0]:.1f} s, dumpjob gzip {runs['gzip'][-1].wall:.1f} s, zstd "
                f"{runs['zstd'][-1].wall:.1f} s, mydumper + upload {runs['mydumper'][-1][0]:.1f} s; "
                f"load average {os.getloadavg()[0]:.1f}")
        half = bench.dumpjob("half", config, env, "2026-06-30")
    finally:
        bench.stop()
    load_after = os.getloadavg()[0]

    baseline, gz, zs = best(runs["baseline"]), best(runs["gzip"]), best(runs["zstd"])
    legacy_wall, legacy_steps = min(runs["legacy"], key=lambda r: r[0])
    peer_wall, peer_steps = min(runs["mydumper"], key=lambda r: r[0])
    raw = gz.extra["summary"]["raw_bytes"]
    raw_half = half.extra["summary"]["raw_bytes"]
    say(f"dataset: basis at scale {SCALE}, {raw / MIB:.0f} MiB of raw SQL; {cores} cores shared by server, "
        f"client, compressor and S3 emulator; load average {load_before:.1f} before, {load_after:.1f} after "
        f"(other work on the machine slows every sample; the best of {ROUNDS} rounds is kept)")
    say(describe(baseline))
    for m in legacy_steps:
        say(describe(m))
    say(f"{'legacy total (sequential)':<36} wall {legacy_wall:6.2f} s  cpu {sum(map(total_cpu, legacy_steps)):5.1f} s"
        f"  gzip -6 output {legacy_steps[0].extra['compressed'] / MIB:.0f} MiB")
    for m in peer_steps:
        say(describe(m))
    say(f"{'mydumper + upload (sequential)':<36} wall {peer_wall:6.2f} s  cpu {sum(map(total_cpu, peer_steps)):5.1f} s"
        f"  output {peer_steps[0].extra['compressed'] / MIB:.0f} MiB")
    for m in (gz, zs, half):
        s = m.extra["summary"]
        cpu = s["cpu_seconds"]
        own = own_cpu(m)
        split = (f"codec {cpu['codec']:.1f}, own {own:.1f} = {own / (s['raw_bytes'] / GIB):.2f}/GiB, of which the "
                 f"main thread {cpu['main_thread']:.1f}"
                 if own is not None else "codec not measured (zstandard's threads)")
        blocks = s.get("deflate_blocks")
        libraries = f", gzip blocks {', '.join(f'{k} {v}' for k, v in blocks.items())}" if blocks else ""
        say(describe(m) + f"  {s['raw_bytes'] / MIB:.0f} MiB → {s['compressed_bytes'] / MIB:.0f} MiB in {s['parts']} "
            f"parts{libraries}; CPU-s: dumpjob {cpu['process']:.1f} ({split}), mysqldump {cpu['children']:.1f}; "
            f"start-up to mysqldump {m.extra['startup']:.2f} s, publishing {m.extra['publishing']:.2f} s")
    ratios = {
        "ratio_vs_mysqldump_gzip": gz.wall / baseline.wall,
        "ratio_vs_mysqldump_zstd": zs.wall / baseline.wall,
        "ratio_vs_mydumper": gz.wall / peer_wall,
        "gzip_size_vs_legacy": gz.extra["compressed"] / legacy_steps[0].extra["compressed"],
        "own_cpu_s_per_gib": min(own_cpu(m) / (m.extra["summary"]["raw_bytes"] / GIB) for m in runs["gzip"]),
    }
    ratio_legacy = gz.wall / legacy_wall
    rss_big = max(m.extra["summary"]["peak_rss_mib"] for m in runs["gzip"])
    rss_half = half.extra["summary"]["peak_rss_mib"]
    rss = max(rss_big, rss_half, *(m.extra["summary"]["peak_rss_mib"] for m in runs["zstd"]))
    say(f"dumpjob gzip (production, level 6) vs mysqldump: {gz.wall:.1f} s / {baseline.wall:.1f} s = "
        f"{ratios['ratio_vs_mysqldump_gzip']:.2f}; zstd-1: {zs.wall:.1f} s / {baseline.wall:.1f} s = "
        f"{ratios['ratio_vs_mysqldump_zstd']:.2f}; vs mydumper + upload: {gz.wall:.1f} s / {peer_wall:.1f} s = "
        f"{ratios['ratio_vs_mydumper']:.2f}; vs legacy: {gz.wall:.1f} s / {legacy_wall:.1f} s = {ratio_legacy:.2f}")
    say(f"gzip output {gz.extra['compressed'] / MIB:.0f} MiB vs legacy gzip -6 "
        f"{legacy_steps[0].extra['compressed'] / MIB:.0f} MiB = {ratios['gzip_size_vs_legacy']:.3f}")
    say(f"peak RSS: {rss_half:.0f} MiB at {raw_half / MIB:.0f} MiB raw, {rss_big:.0f} MiB at {raw / MIB:.0f} MiB raw "
        f"(limit {LIMITS['peak_rss_mib']:.0f} MiB, growth limit {LIMITS['rss_growth_mib']:.0f} MiB)")
    say(f"{bench.checked} published objects passed gzip -t / zstd -t")
    for name, wall, cpu in (("mysqldump", baseline.wall, total_cpu(baseline)), ("dumpjob gzip", gz.wall, total_cpu(gz)),
                            ("dumpjob zstd", zs.wall, total_cpu(zs)),
                            ("mydumper + upload", peer_wall, sum(map(total_cpu, peer_steps)))):
        say("what bounds it: " + bound(name, wall, cpu, cores))
    for name, m, limit in (("dumpjob gzip", gz, "ratio_vs_mysqldump_gzip"),
                           ("dumpjob zstd", zs, "ratio_vs_mysqldump_zstd")):
        say("what the limit needs: " + needs(name, m, LIMITS[limit] * baseline.wall, baseline, cores))
    failures = [f"{name} {value:.2f} > {LIMITS[name]}" for name, value in ratios.items() if value > LIMITS[name]]
    if ratio_legacy > LIMITS["ratio_vs_legacy_gzip"]:
        failures.append(f"ratio_vs_legacy_gzip {ratio_legacy:.2f} > {LIMITS['ratio_vs_legacy_gzip']}")
    if rss > LIMITS["peak_rss_mib"]:
        failures.append(f"peak RSS {rss:.0f} MiB > {LIMITS['peak_rss_mib']:.0f} MiB")
    if rss_big > rss_half + LIMITS["rss_growth_mib"]:
        failures.append(f"peak RSS grows with the dataset ({rss_half:.0f} → {rss_big:.0f} MiB)")
    for failure in failures:
        say(f"ACCEPTANCE FAILED: {failure}")
    if not failures:
        say("acceptance met: " + ", ".join(f"{k} ≤ {v}" for k, v in LIMITS.items() if k != "rss_growth_mib") +
            ", peak RSS flat across sizes")
    print(f"bench: ratio_vs_mysqldump_gzip={ratios['ratio_vs_mysqldump_gzip']:.2f} "
          f"ratio_vs_mysqldump_zstd={ratios['ratio_vs_mysqldump_zstd']:.2f} "
          f"ratio_vs_mydumper={ratios['ratio_vs_mydumper']:.2f} "
          f"gzip_size_vs_legacy={ratios['gzip_size_vs_legacy']:.3f} "
          f"own_cpu_s_per_gib={ratios['own_cpu_s_per_gib']:.2f} peak_rss_mib={rss:.0f} raw_mib={raw / MIB:.0f}",
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
