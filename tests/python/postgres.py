"""A real PostgreSQL server for the Redshift-destination tests (the Debian `postgresql`
package; `tests/run.sh` installs it when missing). Each instance gets its own directory and a
free port, with password (SCRAM) authentication, as a delivery stream would use it."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from garage import free_port

USER = "tributary"
PASSWORD = "tributary-pg-secret"


def pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    raise RuntimeError(f"{name} not found: run tests/run.sh, which installs postgresql")


class Postgres:
    def __init__(self):
        # Not under pytest's tmp_path: PostgreSQL refuses to run as root, so the server runs as
        # the `postgres` user, which must be able to reach its directory.
        self.root = tempfile.mkdtemp(prefix="tributary-pg-")
        self.port = free_port()
        as_root = os.geteuid() == 0
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self.data = os.path.join(self.root, "data")
        subprocess.run(
            [*self.prefix, pg_bin("initdb"), "-D", self.data, "-U", USER,
             "--auth=scram-sha-256", f"--pwfile={pwfile}"],
            check=True, capture_output=True, timeout=120,
        )
        self.log = open(os.path.join(self.root, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, pg_bin("postgres"), "-D", self.data, "-p", str(self.port),
             "-k", self.root, "-c", "listen_addresses=127.0.0.1"],
            stdout=self.log, stderr=self.log,
        )
        deadline = time.time() + 60
        while True:
            r = self.psql("SELECT 1", check=False)
            if r.returncode == 0:
                break
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"postgres did not start: {r.stderr}")
            time.sleep(0.2)

    @property
    def jdbc_url(self):
        return f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def psql(self, sql, check=True):
        r = subprocess.run(
            [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", "postgres",
             "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r

    def query(self, sql):
        return [line.split("|") for line in self.psql(sql).stdout.splitlines() if line]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
