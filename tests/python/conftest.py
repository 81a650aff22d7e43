"""Fixtures for the black-box conformance suite.

Every test talks to a real `tributary serve` process over HTTP, exactly as an AWS client would.
The binary is found through $TRIBUTARY_BIN, else the usual cargo target directories.

Servers:
- `server`: session-wide, `--no-limits --test-hooks`; most tests use it. Tests that move its
  clock must not rely on wall-clock timestamps afterwards.
- `clock_server`: a private `--no-limits --test-hooks` server per module, for tests that
  advance the clock (retention, iterator expiry) without disturbing the shared one.
- `limited_server`: session-wide, throughput limits on.
- `auth_server`: session-wide, SigV4 required, credentials from an auth file.
"""

import itertools
import os
import pathlib
import signal
import subprocess
import threading
import time
import uuid

import boto3
import botocore.config
import pytest
import requests

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent

ACCOUNT = "000000000000"
REGION = "us-east-1"
AUTH_ACCOUNT = "123456789012"
AUTH_KEY_ID = "AKIDTRIBUTARYTEST"
AUTH_SECRET = "tributary-test-secret-key"

CANDIDATES = [
    pathlib.Path.home() / ".cache/tributary/target/debug/tributary",
    REPO / "target/debug/tributary",
]


def find_binary():
    env = os.environ.get("TRIBUTARY_BIN")
    if env:
        return env
    found = [p for p in CANDIDATES if p.is_file() and os.access(p, os.X_OK)]
    if not found:
        pytest.exit(
            "tributary binary not found: set TRIBUTARY_BIN or run `cargo build -p tributary`",
            returncode=2,
        )
    # The most recently built one.
    return str(max(found, key=lambda p: p.stat().st_mtime))


class Server:
    """A running `tributary serve` process."""

    def __init__(self, *args, name="server", tmp_path=None):
        self.name = name
        cmd = [
            find_binary(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            *args,
        ]
        if "--data-dir" not in args:
            cmd.append("--in-memory")
        log_dir = tmp_path or HERE / ".logs"
        os.makedirs(log_dir, exist_ok=True)
        self.log_path = pathlib.Path(log_dir) / f"{name}-{os.getpid()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, env={**os.environ, "RUST_LOG": "warn"}
        )
        line = self._read_ready_line(timeout=30)
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        self.api = fields["api"]
        self.metrics = fields["metrics"]
        self.url = f"http://{self.api}"
        self.metrics_url = f"http://{self.metrics}"

    def _read_ready_line(self, timeout):
        result = {}

        def read():
            result["line"] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        line = result.get("line", "")
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(
                f"{self.name} did not start (got {line!r}); log:\n{self.log_path.read_text()}"
            )
        return line.strip()

    def advance_clock(self, ms):
        r = requests.post(f"{self.metrics_url}/test/advance-clock", params={"ms": int(ms)}, timeout=30)
        assert r.status_code == 200, r.text

    def metrics_text(self):
        return requests.get(f"{self.metrics_url}/metrics", timeout=10).text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def make_client(url, key="AKIDEXAMPLE", secret="dummy-secret", **kw):
    return boto3.client(
        "kinesis",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}, **kw),
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server("--no-limits", "--test-hooks", name="main", tmp_path=tmp_path_factory.mktemp("main"))
    yield s
    assert s.stop() == 0, "server did not shut down cleanly on SIGTERM"


@pytest.fixture(scope="module")
def clock_server(tmp_path_factory):
    s = Server("--no-limits", "--test-hooks", name="clock", tmp_path=tmp_path_factory.mktemp("clock"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def limited_server(tmp_path_factory):
    s = Server("--test-hooks", name="limited", tmp_path=tmp_path_factory.mktemp("limited"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    auth = d / "auth.yaml"
    auth.write_text(
        "credentials:\n"
        f"  - accessKeyId: {AUTH_KEY_ID}\n"
        f"    secretAccessKey: {AUTH_SECRET}\n"
        f'    accountId: "{AUTH_ACCOUNT}"\n'
    )
    s = Server(
        "--no-limits", "--auth-file", str(auth), "--account-id", AUTH_ACCOUNT, name="auth", tmp_path=d
    )
    yield s
    s.stop()


@pytest.fixture(scope="session")
def kinesis(server):
    return make_client(server.url)


@pytest.fixture(scope="module")
def clock_kinesis(clock_server):
    return make_client(clock_server.url)


@pytest.fixture(scope="session")
def limited_kinesis(limited_server):
    return make_client(limited_server.url)


_counter = itertools.count()
_run = uuid.uuid4().hex[:6]


def unique(prefix="s"):
    return f"{prefix}-{_run}-{next(_counter)}"


@pytest.fixture
def stream_name(request):
    """A stream name no other test uses."""
    base = request.node.name.split("[")[0].removeprefix("test_")[:60].replace("_", "-")
    return unique(base)


def wait_active(client, name, timeout=10):
    deadline = time.time() + timeout
    while True:
        s = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if s["StreamStatus"] == "ACTIVE":
            return s
        if time.time() > deadline:
            raise AssertionError(f"stream {name} still {s['StreamStatus']}")
        time.sleep(0.05)


def create_stream(client, name, shards=1, **kw):
    if shards is not None:
        kw["ShardCount"] = shards
    client.create_stream(StreamName=name, **kw)
    wait_active(client, name)
    return name


@pytest.fixture
def stream(kinesis, stream_name):
    """A fresh ACTIVE one-shard stream on the shared server."""
    return create_stream(kinesis, stream_name, 1)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo):
    return excinfo.value.response["Error"]["Message"]


def trim_horizon_records(client, name, shard_id="shardId-000000000000", limit=None):
    it = client.get_shard_iterator(
        StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    kw = {"Limit": limit} if limit else {}
    return client.get_records(ShardIterator=it, **kw)


def read_all(client, name, shard_id="shardId-000000000000", max_calls=20):
    """Every record in a shard from TRIM_HORIZON, following NextShardIterator."""
    it = client.get_shard_iterator(
        StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    out = []
    for _ in range(max_calls):
        r = client.get_records(ShardIterator=it)
        out.extend(r["Records"])
        it = r.get("NextShardIterator")
        if not it or (not r["Records"] and r.get("MillisBehindLatest", 0) == 0):
            break
    return out
