"""A real S3-compatible server for the delivery tests: Garage, one node on loopback.

`tests/run.sh` installs the `garage` binary (`cargo install garage --locked`) when it is not on
PATH. Each Garage instance gets free ports, its own directory, a bucket and a key.
"""

import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import time

import boto3
import botocore.config

REGION = "garage"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def garage_binary():
    found = shutil.which("garage") or str(pathlib.Path.home() / ".cargo/bin/garage")
    if not os.access(found, os.X_OK):
        raise RuntimeError("garage is not installed: run tests/run.sh, which installs it")
    return found


class Garage:
    """A running single-node Garage with bucket `bucket` and an access key."""

    def __init__(self, root, bucket="landing"):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin = garage_binary()
        self.bucket = bucket
        self.s3_port, rpc, admin = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.s3_port}"
        self.config = self.root / "garage.toml"
        self.config.write_text(
            f'metadata_dir = "{self.root}/meta"\n'
            f'data_dir = "{self.root}/data"\n'
            'db_engine = "sqlite"\n'
            "replication_factor = 1\n"
            f'rpc_bind_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_public_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_secret = "{secrets.token_hex(32)}"\n'
            "[s3_api]\n"
            f's3_region = "{REGION}"\n'
            f'api_bind_addr = "127.0.0.1:{self.s3_port}"\n'
            'root_domain = ".s3.garage.localhost"\n'
            "[admin]\n"
            f'api_bind_addr = "127.0.0.1:{admin}"\n'
            f'admin_token = "{secrets.token_hex(16)}"\n'
        )
        self.proc = None
        self.start()
        node = self._node_id()
        self.cli("layout", "assign", "-z", "dc1", "-c", "1G", node)
        self.cli("layout", "apply", "--version", "1")
        self.cli("bucket", "create", bucket)
        out = self.cli("key", "create", "tributary-test")
        self.key_id = re.search(r"Key ID:\s*(\S+)", out).group(1)
        self.secret = re.search(r"Secret key:\s*(\S+)", out).group(1)
        self.cli("bucket", "allow", "--read", "--write", "--owner", bucket, "--key", "tributary-test")
        self._wait_s3()

    def cli(self, *args):
        r = subprocess.run(
            [self.bin, "-c", str(self.config), *args], capture_output=True, text=True, timeout=60
        )
        if r.returncode != 0:
            raise RuntimeError(f"garage {' '.join(args)} failed: {r.stdout}{r.stderr}")
        return r.stdout

    def start(self):
        log = open(self.root / "garage.log", "ab")
        self.proc = subprocess.Popen(
            [self.bin, "-c", str(self.config), "server"],
            stdout=log,
            stderr=log,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.time() + 60
        while True:
            r = subprocess.run(
                [self.bin, "-c", str(self.config), "status"], capture_output=True, text=True
            )
            if r.returncode == 0 and "HEALTHY NODES" in r.stdout:
                return
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"garage did not start: {r.stdout}{r.stderr}")
            time.sleep(0.2)

    def _node_id(self):
        out = self.cli("status")
        seen = False
        for line in out.splitlines():
            if "HEALTHY NODES" in line:
                seen = True
                continue
            m = re.match(r"^([0-9a-f]{8,})\s", line)
            if seen and m:
                return m.group(1)
        raise RuntimeError(f"no node id in garage status: {out}")

    def _wait_s3(self):
        deadline = time.time() + 30
        while True:
            try:
                self.s3().list_objects_v2(Bucket=self.bucket)
                return
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            config=botocore.config.Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 2}
            ),
        )

    def objects(self, prefix=""):
        """Key → body of every object under `prefix`."""
        s3 = self.s3()
        out = {}
        token = None
        while True:
            kw = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            page = s3.list_objects_v2(**kw)
            for o in page.get("Contents", []):
                out[o["Key"]] = s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            token = page.get("NextContinuationToken")
            if not token:
                return out

    def server_args(self):
        """`tributary serve` flags that deliver S3 destinations into this Garage."""
        return [
            "--s3-endpoint",
            self.url,
            "--s3-region",
            REGION,
            "--s3-access-key-id",
            self.key_id,
            "--s3-secret-access-key",
            self.secret,
        ]
