"""Fixtures of the operator end-to-end test: a fake cluster (API server + kubelet) on loopback,
the real `tributary-operator` binary running against it, and a small kubectl-like client.

Binaries: $TRIBUTARY_BIN and $TRIBUTARY_OPERATOR_BIN (run.sh sets both; the defaults are
$CARGO_TARGET_DIR/debug/... or the repository's target/debug/...).
"""

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import pytest
import yaml

from fakekube import FakeApiServer, Store
from kubelet import Kubelet, Network, free_port

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLES = REPO / "examples" / "streams"
# Multi-pod Streams (`shardsPerPod`), for test_cluster_e2e.py.
CLUSTER_EXAMPLES = REPO / "examples" / "cluster"
NAMESPACE = "default"
# How often the operator resyncs a converged Stream (and so reverts drift made through the
# Kinesis API); 60 s by default, short here so the drift test is quick.
SYNC_SECONDS = 3
# Services of test_workloads_e2e.py (its Streams, and the Services of its DeliveryStream and
# AnalyticsApp pods), reserved before the operator starts so `--dataplane-connect-to` has them.
WORKLOAD_SERVICES = [
    "wl-orders",
    "wl-ticks",
    "wl-ticks-out",
    "wl-archive-firehose",
    "wl-landing-firehose",
    "wl-tickers-analytics",
    "wl-bad-sql-analytics",
    "wl-named",
    "wl-named-archive-firehose",
    "wl-loads-firehose",
    "wl-trades-firehose",
]


def binary(env, name):
    """$ENV, else $CARGO_TARGET_DIR/debug/NAME when it exists, else target/debug/NAME (as run.sh)."""
    path = os.environ.get(env)
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR")
        found = target and os.access(pathlib.Path(target) / "debug" / name, os.X_OK)
        path = str(pathlib.Path(target if found else REPO / "target") / "debug" / name)
    if not os.access(path, os.X_OK):
        pytest.exit(f"{name} not found at {path}: build it or set ${env}", returncode=2)
    return path


def example_docs(kind=None, directory=EXAMPLES):
    docs = []
    for f in sorted(directory.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return [d for d in docs if kind is None or d["kind"] == kind]


class Cluster:
    """The fake API server and kubelet, on an event loop in a background thread."""

    def __init__(self, root, tributary_bin):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-cluster", daemon=True)
        self.thread.start()
        self.store = Store()
        self.network = Network()
        self.api = FakeApiServer(self.store)
        self.url = self.run(self.api.start())
        self.kubelet = Kubelet(self.store, self.network, root, {"tributary": tributary_bin})

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def read(self, fn):
        """Runs `fn()` on the cluster's loop (the store is not thread-safe) and returns its value."""

        async def call():
            return fn()

        return self.run(call())

    def kubeconfig(self, path):
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE}}],
                    "current-context": "fake",
                }
            )
        )
        return path

    def close(self):
        try:
            self.run(self.kubelet.shutdown(), timeout=60)
            self.run(self.api.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class Kube:
    """What the test would do with kubectl: a JSON client of the API server."""

    def __init__(self, url):
        self.url = url
        self.plurals = {}

    def request(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": ctype, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        out = json.loads(raw) if raw else None
        if status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {out}")
        return out

    def path(self, api_version, kind, name=None, namespace=NAMESPACE, sub=None):
        """The URL path of a kind, found through discovery like kubectl does."""
        if (api_version, kind) not in self.plurals:
            base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            for r in self.request("GET", base)["resources"]:
                if "/" not in r["name"]:
                    self.plurals[(api_version, r["kind"])] = (base, r["name"], r["namespaced"])
        base, plural, namespaced = self.plurals[(api_version, kind)]
        p = base + (f"/namespaces/{namespace}" if namespaced else "") + f"/{plural}"
        return p + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def get(self, api_version, kind, name, sub=None):
        """The object, or None when it does not exist."""
        out = self.request("GET", self.path(api_version, kind, name, sub=sub), ok=(200, 404))
        return None if out.get("kind") == "Status" and out.get("code") == 404 else out

    def list(self, api_version, kind, label_selector=None):
        q = f"?labelSelector={label_selector}" if label_selector else ""
        return self.request("GET", self.path(api_version, kind) + q)["items"]

    def apply(self, obj, manager="kubectl"):
        """`kubectl apply --server-side`."""
        path = self.path(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        return self.request("PATCH", f"{path}?fieldManager={manager}&force=true", obj, ctype="application/apply-patch+yaml")

    def merge(self, api_version, kind, name, patch, sub=None):
        return self.request("PATCH", self.path(api_version, kind, name, sub=sub), patch, ctype="application/merge-patch+json")

    def delete(self, api_version, kind, name):
        return self.request("DELETE", self.path(api_version, kind, name), {"propagationPolicy": "Background"})

    @staticmethod
    def wait(what, fn, timeout=30.0, interval=0.2):
        """Polls `fn()` until it returns something truthy and returns that."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last saw: {last!r}")


class Operator:
    """A running `tributary-operator run` process."""

    def __init__(self, binary_path, kubeconfig, network, log_path):
        self.metrics = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "TRIBUTARY_OPERATOR_"))}
        env.update(
            KUBECONFIG=str(kubeconfig),
            RUST_LOG="info,kube=warn",
            TRIBUTARY_OPERATOR_METRICS_LISTEN=self.metrics,
            TRIBUTARY_OPERATOR_DATAPLANE_CONNECT_TO=network.connect_to(),
            TRIBUTARY_OPERATOR_SYNC_INTERVAL_SECONDS=str(SYNC_SECONDS),
            TRIBUTARY_OPERATOR_DATAPLANE_TIMEOUT_SECONDS="3",
            # One replica, but through the Lease path the chart turns on for more than one.
            TRIBUTARY_OPERATOR_LEADER_ELECTION="true",
            TRIBUTARY_OPERATOR_LEASE_NAME="tributary-operator",
            POD_NAMESPACE=NAMESPACE,
            POD_NAME="tributary-operator-0",
        )
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([binary_path, "run"], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.metrics}{path}", timeout=2) as r:
            return r.read().decode()

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                return self.get("/readyz") is not None
            except OSError:
                return False

        Kube.wait("the operator's /readyz", ready, timeout=20)

    def tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def binaries():
    return {
        "tributary": binary("TRIBUTARY_BIN", "tributary"),
        "operator": binary("TRIBUTARY_OPERATOR_BIN", "tributary-operator"),
    }


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("operator-e2e")


@pytest.fixture(scope="session")
def cluster(binaries, workdir, request):
    c = Cluster(workdir / "cluster", binaries["tributary"])
    # The Services the example Streams get, as cluster DNS would know them.
    for s in example_docs("Stream"):
        c.network.reserve(f"{s['metadata']['name']}.{NAMESPACE}.svc:4567")
    for name in WORKLOAD_SERVICES:
        c.network.reserve(f"{name}.{NAMESPACE}.svc:4567")
    # A multi-pod Stream's Service, and pod 0's metrics port, where the operator reads
    # `GET /cluster` (the default --dataplane-coordinator-metrics).
    for s in example_docs("Stream", CLUSTER_EXAMPLES):
        name = s["metadata"]["name"]
        c.network.reserve(f"{name}.{NAMESPACE}.svc:4567")
        c.network.reserve(f"{name}-0.{name}-pods.{NAMESPACE}.svc:9567")
    yield c
    if request.session.testsfailed:
        print("\n--- kubelet events (last 30) ---")
        for e in c.kubelet.events[-30:]:
            print(*e)
    c.close()


@pytest.fixture(scope="session")
def kube(cluster):
    return Kube(cluster.url)


@pytest.fixture(scope="session")
def kubeconfig(cluster, workdir):
    return cluster.kubeconfig(workdir / "kubeconfig")


@pytest.fixture(scope="session")
def crds_installed(binaries, kubeconfig):
    """`tributary-operator crd install` against the fake API server."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RUST_LOG": "warn"}
    for k in [k for k in env if k.startswith("KUBERNETES_")]:
        del env[k]
    out = subprocess.run([binaries["operator"], "crd", "install"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="session")
def operator(binaries, cluster, kubeconfig, crds_installed, workdir, request):
    op = Operator(binaries["operator"], kubeconfig, cluster.network, workdir / "operator.log")
    op.wait_ready()
    yield op
    op.stop()
    if request.session.testsfailed:
        print(f"\n--- operator log (last 40 lines of {op.log_path}) ---\n{op.tail()}")


@pytest.fixture(scope="session")
def kinesis_for(cluster):
    """A boto3 Kinesis client for a stream's `status.endpoint` (the Service's address)."""
    cfg = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=15)

    def client(endpoint):
        return boto3.client(
            "kinesis",
            endpoint_url=cluster.network.resolve(endpoint),
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=cfg,
        )

    return client
