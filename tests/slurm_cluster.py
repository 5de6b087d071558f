"""A real, throw-away single-node Slurm cluster for the test suite: its own munged (own key and
socket), slurmctld and slurmd, all in one temporary directory, on ports nothing else uses, so it
neither needs nor touches a system-wide Slurm or MUNGE. Runs as root (SlurmUser=SlurmdUser=root);
no cgroups (proctrack/linuxproc, task/none) and no accounting database, so `sacct` is not
available: ask `scontrol show job` or `squeue`."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from tests.cores import session_cores

SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")  # Debian puts the daemons here, not always on PATH
PROGRAMS = ("slurmctld", "slurmd", "munged", "sbatch")
MARKER = "WORKBENCH_SLURM_CLUSTER"  # in every daemon's environment: how stop() finds stragglers
PREFIX = "workbench-slurm-"  # the clusters' directories, in tempfile.gettempdir()


def _which(name: str) -> str | None:
    """A program on PATH, else in the sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    for d in SBIN_DIRS:
        path = Path(d) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def find_slurm() -> bool:
    """Whether the Slurm daemons, a client and munged are installed."""
    return all(_which(p) for p in PROGRAMS)


def _free_ports(n: int) -> list[int]:
    """`n` different ports nothing listens on now (the OS's picks, all held at once; the daemons
    bind them a moment later)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _clean_environ() -> dict[str, str]:
    """os.environ without Slurm's input variables: a SLURM_JOB_ID (pytest itself run in a Slurm
    job) would make srun join that job, an SBATCH_PARTITION would pick a partition we lack."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "SCRON_"))}


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(none: {e})"


class SlurmCluster:
    """munged + slurmctld + slurmd in a fresh temporary directory, one node (this host, all the
    CPUs this process may use) in one partition, `debug`. `start()` returns once the node is
    idle; `stop()` (or leaving the `with`) cancels what still runs, stops the daemons and deletes
    the directory. Pass `env` to every Slurm command (sbatch, squeue, scontrol, ...)."""

    partition = "debug"

    def __init__(self, startup_timeout: float = 90, cred_expire: int = 10,
                 cluster_name: str = "workbench") -> None:
        # cred_expire: the job-step credential's lifetime, and also how long a requeued job waits
        # before it may start again (Slurm's default, 120 s, would stall any requeue test)
        self.startup_timeout = startup_timeout
        self.cred_expire = cred_expire
        self.cluster_name = cluster_name
        self.tmp: Path | None = None
        self.node = socket.gethostname().split(".")[0]  # `hostname -s`: slurmctld checks it
        self.cores = session_cores()  # the daemons' (not an xdist worker's share): the node's CPUs
        self.cpus = len(self.cores) or os.cpu_count() or 1
        self.ctld_port = self.slurmd_port = 0
        self._procs: dict[str, subprocess.Popen] = {}
        self._owner_pid = os.getpid()  # a forked child's atexit must not stop the parent's cluster

    # -- paths and environment --------------------------------------------------------------
    def _path(self, name: str) -> Path:
        assert self.tmp is not None, "the cluster is not started"
        return self.tmp / name

    @property
    def conf_path(self) -> Path:
        return self._path("slurm.conf")

    @property
    def munge_socket(self) -> Path:
        return self._path("munge/munge.socket")

    @property
    def env(self) -> dict[str, str]:
        """The environment for a Slurm command or a process that runs one: the current
        environment (read now), without inherited Slurm input variables, with SLURM_CONF ours."""
        return {**_clean_environ(), "SLURM_CONF": str(self.conf_path)}

    def _daemon_env(self) -> dict[str, str]:
        return {**self.env, MARKER: str(self.tmp)}

    # -- start ----------------------------------------------------------------------------
    def start(self) -> SlurmCluster:
        """Start munged, slurmctld and slurmd and wait for the node to be idle. Raises
        RuntimeError with the daemons' log tails on failure (after stopping what started)."""
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            raise RuntimeError("the test Slurm cluster runs its daemons as root (SlurmUser=root): run the "
                               "tests as root, as .ci/run does")
        missing = [p for p in PROGRAMS if not _which(p)]
        if missing:
            raise RuntimeError(f"Slurm is not installed (missing {', '.join(missing)}): "
                               "apt-get install slurm-wlm munge")
        _sweep_orphans()
        self.tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
        atexit.register(self.stop)  # backstop: a session that dies before its finalizer
        try:
            (self.tmp / "owner").write_text(f"{self._owner_pid}\n")  # for _sweep_orphans
            self.tmp.chmod(0o755)  # others may reach the munge socket (a job run as another user)
            self._start_munged()
            for attempt in range(3):  # a free port can be taken between the pick and the bind
                self.ctld_port, self.slurmd_port = _free_ports(2)
                self._write_conf()
                try:
                    self._start_slurm()
                    return self
                except RuntimeError as e:
                    if "Address already in use" not in str(e) or attempt == 2:
                        raise
                    self._stop_slurm()
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        """One daemon in the foreground (our child, so we hold its pid), output to <name>.out."""
        exe = _which(args[0])
        assert exe is not None
        with open(self._path(f"{name}.out"), "ab") as out:
            proc = subprocess.Popen([exe, *args[1:]], cwd=self.tmp, env=self._daemon_env(),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True,  # a Ctrl-C reaches pytest, which stops us
                                    preexec_fn=self._preexec)
        self._procs[name] = proc
        return proc

    def _preexec(self) -> None:
        """In a daemon between fork and exec: die with us, and run on the cluster's cores."""
        if _die_with_parent is not None:
            _die_with_parent()
        if self.cores:
            os.sched_setaffinity(0, self.cores)

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        exe = _which(args[0]) or args[0]
        return subprocess.run([exe, *args[1:]], env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def _wait(self, what: str, ready, names: tuple[str, ...]) -> None:
        """Poll `ready()` until true; fail if one of the daemons `names` exits, or on timeout."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            for name in names:
                if self._procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited ({self._procs[name].returncode}) before {what}\n"
                                       + self.logs())
            try:
                if ready():
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {self.startup_timeout:.0f} s waiting for {what}\n"
                                   + self.logs())
            time.sleep(0.3)

    def _start_munged(self) -> None:
        """Our own munged: a fresh key, our own socket, pid, log and seed files. As root it
        needs --force; it runs in the foreground so that it stays our child."""
        munge_dir = self._path("munge")
        munge_dir.mkdir(mode=0o755)
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)  # munged refuses a key others can read; owned by us, the user it runs as
        self._spawn("munged", "munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                    f"--key-file={key}", f"--pid-file={munge_dir / 'munged.pid'}",
                    f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={munge_dir / 'munged.seed'}")

        def ready() -> bool:
            if not self.munge_socket.exists():
                return False
            return self._run("munge", "-n", f"--socket={self.munge_socket}", timeout=10).returncode == 0

        self._wait("munged answers on its socket", ready, ("munged",))

    def _write_conf(self) -> None:
        for d in ("state", "spool"):
            self._path(d).mkdir(exist_ok=True)
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        mem_mb = os.sysconf("SC_PHYS_PAGES") * page // 2**20 if hasattr(os, "sysconf") else 2048
        real_memory = max(1, int(mem_mb * 0.9))  # below what slurmd finds, or the node is drained
        t = self.tmp
        settings = {
            "ClusterName": self.cluster_name,
            # the address in parentheses: no name lookup of this host needed
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": self.ctld_port,
            "SlurmdPort": self.slurmd_port,
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket},cred_expire={self.cred_expire}",
            "ProctrackType": "proctrack/linuxproc",  # no cgroups
            "TaskPlugin": "task/affinity",  # tasks bound to their CPUs, as on a real cluster
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            # the scheduler looks at pending jobs every 2 s (default 60 s): a requeued job, held
            # until cred_expire has passed, starts soon after
            "SchedulerParameters": "sched_interval=2,bf_interval=2",
            "MpiDefault": "none",
            "MailProg": "/bin/true",
            "StateSaveLocation": f"{t}/state",
            "SlurmdSpoolDir": f"{t}/spool",
            "SlurmctldPidFile": f"{t}/slurmctld.pid",
            "SlurmdPidFile": f"{t}/slurmd.pid",
            "SlurmctldLogFile": f"{t}/slurmctld.log",
            "SlurmdLogFile": f"{t}/slurmd.log",
            "ReturnToService": 2,
            "MinJobAge": 120,  # a finished job stays in `scontrol show job` at least this long
            "KillWait": 5,
            "InactiveLimit": 0,
            "OverTimeLimit": 0,
            "JobRequeue": 1,  # batch jobs may be requeued (scontrol requeue; --requeue is then default)
        }
        lines = [f"{k}={v}" for k, v in settings.items()]
        lines.append(f"NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={self.node} "
                     f"CPUs={self.cpus} RealMemory={real_memory} State=UNKNOWN")
        lines.append(f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _start_slurm(self) -> None:
        self._spawn("slurmctld", "slurmctld", "-D", "-f", str(self.conf_path))
        self._wait("slurmctld answers (scontrol ping)",
                   lambda: "UP" in self._run("scontrol", "ping", timeout=15).stdout, ("munged", "slurmctld"))
        self._spawn("slurmd", "slurmd", "-D", "-N", self.node, "-f", str(self.conf_path))

        def idle() -> bool:
            states = self._run("sinfo", "-h", "-o", "%T", timeout=15).stdout.split()
            return states == ["idle"]

        self._wait(f"node {self.node} idle (sinfo)", idle, ("munged", "slurmctld", "slurmd"))

    def logs(self) -> str:
        """The tails of the daemons' logs and outputs, for an error message."""
        if self.tmp is None:
            return "(no cluster directory)"
        parts = []
        # in the foreground a daemon logs to stderr (<name>.out) as well as to its log file, and
        # stderr also has what it says before it opens the log
        for out, log in (("slurmctld.out", "slurmctld.log"), ("slurmd.out", "slurmd.log"),
                         ("munged.out", "munge/munged.log")):
            for name in (out, log):
                path = self._path(name)
                if path.exists() and path.stat().st_size:
                    parts.append(f"--- {name} ---\n{_tail(path)}")
                    break
        return "\n".join(parts)

    # -- stop -----------------------------------------------------------------------------
    def _stop_slurm(self) -> None:
        """Cancel what still runs (so that slurmstepd ends its jobs), then stop slurmd and
        slurmctld and any process of theirs left (slurmstepd, slurmscriptd, a job's tasks)."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            try:
                self._run("scancel", "--quiet", "--user=root", timeout=15)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and self._run("squeue", "-h", "-t", "running,completing",
                                                                 timeout=10).stdout.strip():
                    time.sleep(0.5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in ("slurmd", "slurmctld"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc)
        self._kill_stragglers(spare={p.pid for p in self._procs.values()})  # munged may stay
        for d in ("state", "spool"):
            shutil.rmtree(self._path(d), ignore_errors=True)

    def _kill_stragglers(self, spare: set[int] = frozenset()) -> None:
        if self.tmp is not None:
            _kill_processes_of(self.tmp, spare)

    def stop(self) -> None:
        """Stop everything and delete the directory. Safe to call twice, and a no-op in a forked
        child."""
        if os.getpid() != self._owner_pid or self.tmp is None:
            return
        try:
            self._stop_slurm()
            proc = self._procs.pop("munged", None)
            if proc is not None:
                _terminate(proc)
            self._kill_stragglers()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            atexit.unregister(self.stop)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen, wait: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `wait` seconds; reaps it."""
    try:
        proc.terminate()
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    except OSError:
        pass


def _kill_processes_of(tmp: Path, spare: set[int] = frozenset()) -> None:
    """SIGKILL every process started with the cluster's marker or SLURM_CONF in its environment
    (slurmstepd outlives slurmd by design; a job's tasks may outlive slurmstepd)."""
    if not Path("/proc").is_dir():
        return
    needles = (f"{MARKER}={tmp}".encode(), f"SLURM_CONF={tmp / 'slurm.conf'}".encode())
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me or int(entry.name) in spare:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(n in environ for n in needles):
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)


def _sweep_orphans() -> None:
    """Clean up after sessions that were killed outright (SIGKILL runs no finalizer or atexit):
    their daemons died with them (_die_with_parent) but slurmstepd and the jobs' processes did
    not. A cluster directory whose owner process is gone: kill its processes, delete it."""
    for tmp in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((tmp / "owner").read_text())
            os.kill(owner, 0)
            continue  # a live session's cluster
        except ProcessLookupError:
            pass
        except (OSError, ValueError):  # no owner file yet (starting), or not ours to judge
            continue
        _kill_processes_of(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _pdeathsig() -> Callable[[], None] | None:
    """A `preexec_fn` for a daemon: SIGTERM to it when the process that started it dies (a pytest
    killed with SIGKILL runs no finalizer and no atexit). Linux only, else None. prctl is looked
    up here, in the parent: the child between fork and exec only calls it (no import, no lock)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        sigterm = int(signal.SIGTERM)
    except (OSError, AttributeError):
        return None

    def die_with_parent() -> None:
        prctl(1, sigterm)  # PR_SET_PDEATHSIG

    return die_with_parent


_die_with_parent = _pdeathsig()
