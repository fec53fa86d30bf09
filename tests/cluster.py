"""Throwaway PostgreSQL clusters: initialised and run as the system user postgres
(initdb refuses root), listening on 127.0.0.1 at a free port and on a Unix socket in
their own directory. Used by the end-to-end tests and by `make demo`."""

import os
import shutil
import socket
import subprocess
import tempfile

import psycopg

PG_BIN = subprocess.run(
    ["/usr/lib/postgresql/15/bin/pg_config", "--bindir"], check=True, capture_output=True, text=True
).stdout.strip()


def as_postgres(*argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return ["sudo", "-u", "postgres", *argv]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    running = set()  # the clusters started and not yet removed, whose logs a failed test shows

    def __init__(self, settings=(), env=None, start=True, address_space=None):
        """`address_space`: bytes of virtual memory each server process may map (its
        RLIMIT_AS), so that a process running away fails alone instead of the machine."""
        self.address_space = address_space
        self.dir = tempfile.mkdtemp(prefix="ai_loader_e2e.")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        subprocess.run(
            as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
            check=True, capture_output=True,
        )
        # The embedding test servers listen on 127.0.0.1, a loopback address only the
        # hosts in ai_loader.http_allowed_hosts may be reached at (without the server's key:
        # that takes ai_loader.api_key_endpoints).
        conf = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{self.dir}'", "fsync = off",
                "ai_loader.http_allowed_hosts = '127.0.0.1'", *settings]
        subprocess.run(as_postgres("tee", "-a", f"{self.data}/postgresql.conf"),
                       input="\n".join(conf) + "\n", text=True, check=True, capture_output=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RUST_")} | (env or {})
        if start:
            self.start()

    def start(self):
        limit = ["prlimit", f"--as={self.address_space}"] if self.address_space else []
        subprocess.run(
            as_postgres(*limit, f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", f"{self.dir}/server.log",
                        "-w", "-t", "60", "start"),
            check=True, capture_output=True, env=self.env,
        )
        Cluster.running.add(self)

    def shutdown(self):
        """Stops the server, keeping its files."""
        subprocess.run(as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"),
                       check=True, capture_output=True)

    def connect(self, dbname="postgres", **kwargs):
        kwargs.setdefault("user", "postgres")
        return psycopg.connect(host=self.dir, port=self.port, dbname=dbname, autocommit=True, **kwargs)

    def log(self):
        with open(f"{self.dir}/server.log") as f:
            return f.read()

    def log_tail(self, lines=80):
        try:
            return "".join(self.log().splitlines(keepends=True)[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def stop(self):
        """Stops the server and removes its files."""
        subprocess.run(as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"),
                       capture_output=True)
        Cluster.running.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)
