"""A real, throw-away PostgreSQL server for the test suite: its own data directory, on loopback,
tuned for speed over durability (nothing in it outlives the session)."""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

USER = "workbench"  # the superuser initdb creates; trust auth, so no password anywhere


def find_pg_bin() -> Path | None:
    """The directory holding pg_ctl and initdb: Debian's newest /usr/lib/postgresql/<v>/bin (not on
    PATH there), else wherever pg_ctl is on PATH; None when PostgreSQL is not installed."""
    def version(bin_dir: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(bin_dir).parent.name)) or (0,)

    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(bin_dir) / "pg_ctl").is_file():
            return Path(bin_dir)
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    """A port nothing listens on now (the OS's pick; the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl start in a fresh temporary directory; `stop()` (or leaving the `with`)
    shuts it down and deletes everything. As root the server runs as the `postgres` user, since
    initdb and postgres refuse to run as root."""

    def __init__(self, bin_dir: Path, startup_timeout: int = 60) -> None:
        self.bin_dir = bin_dir
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.tmp: Path | None = None
        self._owner_pid = os.getpid()  # a forked child's atexit must not stop the parent's server
        self._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
        self._watchdog: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "data"

    @property
    def log_file(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "server.log"

    def _env(self) -> dict[str, str]:
        """The environment without PG* settings (a stray PGDATA or PGPORT would point a program
        elsewhere)."""
        return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "LC_ALL": "C"}

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        """One PostgreSQL program, as the user the server runs as."""
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], cwd=self.tmp, env=self._env(),
                              user="postgres" if self._as_postgres else None, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=self.startup_timeout + 30)

    def _start_watchdog(self) -> None:
        """A shell that waits for this process to die, however it dies, then stops the server and
        deletes its directory. pg_ctl detaches the server, so it outlives a pytest that aborts
        (a crash in Qt) or is killed: no finalizer or atexit runs then, but the kernel closes our
        end of the pipe, and `cat` returns. After `stop()` it finds nothing left to do."""
        assert self.tmp is not None
        script = 'cat >/dev/null; "$0" stop -m immediate -w -D "$1" >/dev/null 2>&1; rm -rf "$2"'
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script, str(self.bin_dir / "pg_ctl"), str(self.data_dir), str(self.tmp)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._env(),
            user="postgres" if self._as_postgres else None,  # owns the directory, and pg_ctl runs as it
            start_new_session=True)  # a Ctrl-C reaches pytest, which stops the server itself

    def start(self) -> PostgresServer:
        """Create the cluster and start it; raises RuntimeError with the server log's tail on
        failure (after cleaning up)."""
        self.tmp = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        atexit.register(self.stop)  # backstop: a session that dies before its finalizer
        try:
            if self._as_postgres:
                shutil.chown(self.tmp, "postgres", "postgres")
            self._start_watchdog()
            init = self._run("initdb", "-D", str(self.data_dir), "-U", USER, "--auth=trust",
                             "--encoding=UTF8", "--no-locale", "--no-sync")
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}{init.stderr}")
            for attempt in range(3):  # the free port can be taken between the pick and the bind
                self.port = _free_port()
                self._write_config()
                started = self._run("pg_ctl", "start", "-w", "-t", str(self.startup_timeout),
                                    "-D", str(self.data_dir), "-l", str(self.log_file))
                if started.returncode == 0:
                    return self
                log = self._log_tail()
                if "could not bind" not in log or attempt == 2:
                    raise RuntimeError(f"PostgreSQL did not start ({started.returncode}):\n"
                                       f"{started.stdout}{started.stderr}\n--- server log ---\n{log}")
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _write_config(self) -> None:
        """Loopback only, socket in our own directory (not /var/run/postgresql, which may be
        absent or another server's), and no durability: the data is thrown away."""
        assert self.tmp is not None
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.tmp}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",  # the suite starts many worker processes at once
            "shared_buffers": "32MB",
        }
        # postgresql.auto.conf is read last, so its values win over initdb's postgresql.conf
        # (rewritten on each attempt: a retry changes the port)
        conf = self.data_dir / "postgresql.auto.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if self._as_postgres:
            shutil.chown(conf, "postgres", "postgres")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no server log: {e})"

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """A new, empty database (a copy of template0, so nothing a test put in template1 leaks
        in); returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (open connections are cut), then delete the directory. Safe to call
        twice, and a no-op in a forked child."""
        if os.getpid() != self._owner_pid or self.tmp is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                stopped = self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data_dir))
                if stopped.returncode != 0:  # fall back to immediate: no server may outlive us
                    self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data_dir))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            atexit.unregister(self.stop)
            if self._watchdog is not None:
                self._watchdog.communicate()  # closes its pipe: it wakes, finds nothing, and exits
                self._watchdog = None

    def pause(self) -> None:
        """Stop the server and keep its data (a server gone down, or a network cut: clients see
        their connections closed and new ones refused)."""
        self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data_dir))

    def resume(self) -> None:
        """Start a paused server again, on the same port with the same data."""
        started = self._run("pg_ctl", "start", "-w", "-t", str(self.startup_timeout), "-D", str(self.data_dir),
                            "-l", str(self.log_file))
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start again:\n{started.stderr}\n{self._log_tail()}")

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
