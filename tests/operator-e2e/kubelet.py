"""The StatefulSet and Deployment controllers and kubelet of the fake cluster: runs each
StatefulSet's and Deployment's pods as real local processes, exactly as their pod spec says,
and reports them in the API.

For each StatefulSet or Deployment in the fake API server (`fakekube.Store`), this:

1. starts `spec.replicas` pods `NAME-0..N-1` once the ConfigMaps their volumes name exist. A
   pod is one process: the container's `command` (or the image's entrypoint, `tributary`) with
   its `args` and `env`. The executable `tributary` is the binary under test;
2. gives the pod its volumes as directories: a ConfigMap volume is its keys written as files,
   an `emptyDir` is a fresh directory, a `volumeClaimTemplates` claim is a directory kept per
   StatefulSet and ordinal (the persistent volume), a `persistentVolumeClaim` volume is a
   directory per claim that goes when the claim object is deleted. Every mount path in the
   arguments and environment is rewritten to its directory. `secretKeyRef` variables are read
   from the Secret (a pod waits while it is missing, like CreateContainerConfigError);
3. gives the pod loopback ports: an argument or variable naming a declared container port
   (`0.0.0.0:4567`, `:4567`) is rewritten to `127.0.0.1:PORT`. A StatefulSet pod under its
   headless Service (`spec.serviceName`) listens where the `Network` holds its stable DNS name
   `POD.SERVICE.NAMESPACE.svc:PORT`; other ports get free ports. A Service with a virtual
   address (`SERVICE.NAMESPACE.svc:PORT`) is a small TCP proxy on the address the `Network`
   holds for it, forwarding each connection to one of the pods it selects (round robin over
   the ready ones; while none is ready, over the running ones), so the Service's address
   (through `--dataplane-connect-to` for the operator, through `Network.resolve` for the test)
   reaches the pods. A Service or pod address (`....svc:PORT`) anywhere in an argument or
   variable becomes its loopback address, the way cluster DNS would resolve it. `$(VAR)` in
   `command`, `args` and `env` values expands to the container's variable `VAR` (`$$` escapes),
   as the kubelet does;
4. runs the readiness probe (`httpGet` on the rewritten port) and writes `Pod` objects and the
   workload's `status` (`readyReplicas`, `observedGeneration`, ...), which the operator
   watches;
5. restarts a process that exits (restartPolicy Always), replaces pods whose template changed,
   and, when the StatefulSet is deleted, stops its pods and keeps or deletes their volumes as
   `persistentVolumeClaimRetentionPolicy.whenDeleted` says.

Not modelled: images, resource limits, security contexts, probes other than readiness, more
than one container, ReplicaSets and rolling updates (a Deployment's pods are replaced at once,
`NAME-0`), pod scheduling. Workloads of both kinds must have distinct names in a namespace.
A real cluster tests those.
"""

import asyncio
import base64
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket

import aiohttp

from fakekube import ApiError, Store, decode_config_map_data, labels_match, now

ENTRYPOINTS = {"tributary"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Network:
    """Cluster DNS names (`HOST:PORT` of Services) and the loopback addresses behind them."""

    def __init__(self):
        self.addresses = {}
        self.backends = {}  # Service HOST:PORT -> {(ns, pod name): (Pod, local port)}
        self.proxies = {}  # Service HOST:PORT -> asyncio server
        self.turn = {}  # Service HOST:PORT -> round-robin counter

    def reserve(self, host_port):
        """The loopback address of `host_port`, chosen on first use."""
        key = host_port.lower()
        if key not in self.addresses:
            self.addresses[key] = f"127.0.0.1:{free_port()}"
        return self.addresses[key]

    def resolve(self, url):
        """`url` with a Service address replaced by its loopback address."""
        m = re.match(r"^(https?://)([^/]+)(.*)$", url)
        if not m or m.group(2).lower() not in self.addresses:
            raise KeyError(f"no address for {url}")
        return m.group(1) + self.addresses[m.group(2).lower()] + m.group(3)

    def connect_to(self):
        """The value of the operator's `--dataplane-connect-to`."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.addresses.items()))

    # Services with a virtual address: TCP proxies to the pods they select ---------------------
    def add_backend(self, host_port, pod, port):
        """Makes the Service `host_port` forward to `pod`'s local `port` too."""
        self.backends.setdefault(host_port.lower(), {})[(pod.ns, pod.name)] = (pod, port)

    def remove_backends(self, pod):
        """Forgets `pod` (this very pod object: a replacement keeps its own entries)."""
        for backends in self.backends.values():
            if backends.get((pod.ns, pod.name), (None,))[0] is pod:
                del backends[(pod.ns, pod.name)]

    async def ensure_proxy(self, host_port):
        key = host_port.lower()
        if key in self.proxies:
            return
        host, port = self.reserve(key).rsplit(":", 1)
        self.proxies[key] = await asyncio.start_server(lambda r, w: self._forward(key, r, w), host, int(port))

    def pick(self, key):
        """The pod (and port) the next connection to the Service `key` goes to, or None."""
        running = [(p, port) for p, port in self.backends.get(key, {}).values() if p.proc and p.proc.returncode is None and not p.stopping]
        choice = [b for b in running if b[0].ready] or running
        if not choice:
            return None
        i = self.turn.get(key, 0)
        self.turn[key] = i + 1
        return choice[i % len(choice)]

    async def _forward(self, key, reader, writer):
        target = self.pick(key)
        if target is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target[1])
        except OSError:
            writer.close()
            return

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def close(self):
        for server in self.proxies.values():
            server.close()
        self.proxies.clear()


def expand(value, env):
    """`$(VAR)` replaced by `env[VAR]` when defined (else kept), `$$` by `$`, as the kubelet
    expands `command`, `args` and `env` values."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


class Unsupported(Exception):
    """A pod spec this kubelet cannot run."""


class NotYet(Exception):
    """A pod cannot start yet (a ConfigMap it mounts does not exist)."""


class Pod:
    def __init__(self, ns, sts_name, ordinal, template_hash, plural="statefulsets"):
        self.ns, self.sts_name, self.ordinal = ns, sts_name, ordinal
        self.plural = plural
        self.name = f"{sts_name}-{ordinal}"
        self.hash = template_hash
        self.proc = None
        self.argv = []
        self.env = {}
        self.ports = {}  # container port -> local port
        self.volumes = {}  # mount path -> local dir
        self.ready = False
        self.stopping = False
        self.restarts = 0
        self.dir = None
        self.log = None
        self.task = None
        self.services = []  # (Service HOST:PORT, local port) of the Services forwarding here


class Kubelet:
    def __init__(self, store: Store, network: Network, root, binaries):
        self.store, self.network = store, network
        self.root = pathlib.Path(root)
        self.binaries = binaries  # entrypoint name -> path
        self.pods = {}  # (ns, sts, ordinal) -> Pod
        self.claim_policy = {}  # (ns, sts) -> whenDeleted of the last spec seen
        self.locks = {}
        self.pending = set()
        self.events = []  # (time, ns, pod, message), for test failure messages
        self.starts = 0
        self.sts_type = store.type_for("apps", "v1", "statefulsets")
        self.dep_type = store.type_for("apps", "v1", "deployments")
        self.workload_types = {"statefulsets": self.sts_type, "deployments": self.dep_type}
        self.pvc_type = store.type_for("", "v1", "persistentvolumeclaims")
        self.secret_type = store.type_for("", "v1", "secrets")
        self.cm_type = store.type_for("", "v1", "configmaps")
        self.svc_type = store.type_for("", "v1", "services")
        self.pod_type = store.type_for("", "v1", "pods")
        store.listeners.append(self.on_event)

    def log_event(self, ns, pod, message):
        self.events.append((now(), ns, pod, message))

    # reacting to the API ------------------------------------------------------------------------
    def on_event(self, etype, t, obj):
        meta = obj["metadata"]
        for plural, wt in self.workload_types.items():
            if t.key == wt.key:
                self.schedule(meta["namespace"], meta["name"], plural)
        if t.key in (self.cm_type.key, self.secret_type.key) and etype != "DELETED":
            # A pod waiting for this ConfigMap or Secret may start now; syncing is idempotent.
            for plural, wt in self.workload_types.items():
                for w in self.store.list(wt, meta["namespace"]):
                    self.schedule(meta["namespace"], w["metadata"]["name"], plural)
        elif t.key == self.pvc_type.key and etype == "DELETED":
            d = self.root / "claims" / meta["namespace"] / meta["name"]
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)
                self.log_event(meta["namespace"], meta["name"], f"deleted volume of claim {meta['name']}")

    def schedule(self, ns, name, plural="statefulsets"):
        key = (ns, name, plural)
        if key in self.pending:
            return
        self.pending.add(key)
        asyncio.get_running_loop().create_task(self._sync_soon(key))

    async def _sync_soon(self, key, delay=0.0):
        if delay:
            await asyncio.sleep(delay)
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            self.pending.discard(key)
            try:
                await self.sync(*key)
            except Exception as e:  # keep the kubelet alive; report through the log
                self.log_event(key[0], key[1], f"sync failed: {e!r}")

    # the StatefulSet controller ------------------------------------------------------------------
    async def sync(self, ns, name, plural="statefulsets"):
        sts = self.store.find(self.workload_types[plural], ns, name)
        mine = {k[2]: p for k, p in self.pods.items() if k[:2] == (ns, name)}
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            for pod in mine.values():
                await self.stop(pod)
            policy, claims = self.claim_policy.pop((ns, name), ("Retain", []))
            if plural != "statefulsets":
                return
            if sts is None and policy == "Delete":
                for claim in claims:
                    for d in (self.root / "volumes" / ns).glob(f"{claim}-{name}-*"):
                        if d.name.rsplit("-", 1)[1].isdigit():
                            shutil.rmtree(d, ignore_errors=True)
                            self.log_event(ns, name, f"deleted volume {d.name}")
            return
        spec = sts["spec"]
        if plural == "statefulsets":
            policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
            claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []]
            self.claim_policy[(ns, name)] = (policy.get("whenDeleted", "Retain"), claims)
        template = spec["template"]
        want_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        replicas = spec.get("replicas", 1)
        for ordinal, pod in sorted(mine.items()):
            if ordinal >= replicas or pod.hash != want_hash:
                await self.stop(pod)
                mine.pop(ordinal)
        waiting = False
        for ordinal in range(replicas):
            if ordinal in mine:
                continue
            try:
                await self.start(sts, ordinal, want_hash, plural)
            except NotYet as e:
                self.log_event(ns, f"{name}-{ordinal}", f"waiting: {e}")
                waiting = True
        self.report(ns, name, plural)
        if waiting:
            asyncio.get_running_loop().create_task(self._sync_soon((ns, name, plural), delay=0.5))

    def report(self, ns, name, plural="statefulsets"):
        """Writes the workload's status (and its pods' objects) from the running pods."""
        wt = self.workload_types[plural]
        sts = self.store.find(wt, ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        pods = [p for k, p in sorted(self.pods.items()) if k[:2] == (ns, name)]
        template = sts["spec"]["template"]
        current = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        ready = sum(p.ready for p in pods)
        updated = sum(p.hash == current for p in pods)
        if plural == "statefulsets":
            status = {
                "observedGeneration": sts["metadata"]["generation"],
                "replicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": updated,
                "updatedReplicas": updated,
                "currentRevision": f"{name}-{current}",
                "updateRevision": f"{name}-{current}",
                "collisionCount": 0,
            }
        else:
            available = ready >= sts["spec"].get("replicas", 1)
            status = {
                "observedGeneration": sts["metadata"]["generation"],
                "replicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "updatedReplicas": updated,
                "unavailableReplicas": len(pods) - ready,
                "conditions": [{"type": "Available", "status": "True" if available else "False",
                                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"}],
            }
        if sts.get("status") != status:
            sts["status"] = status
            try:
                self.store.update(wt, ns, name, sts, subresource="status")
            except ApiError:
                pass
        for p in pods:
            self.write_pod(sts, p)

    def write_pod(self, sts, pod):
        template = sts["spec"]["template"]
        obj = {
            "metadata": {
                "name": pod.name,
                "namespace": pod.ns,
                "labels": {**(template.get("metadata", {}).get("labels") or {}), "statefulset.kubernetes.io/pod-name": pod.name},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": self.workload_types[pod.plural].kind, "name": pod.sts_name, "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {**template.get("spec", {}), "nodeName": "localhost", "hostname": pod.name},
        }
        status = {
            "phase": "Running" if pod.proc and pod.proc.returncode is None else "Pending",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if pod.ready else "False"}],
            "containerStatuses": [{"name": c["name"], "ready": pod.ready, "restartCount": pod.restarts} for c in template["spec"]["containers"]],
        }
        try:
            existing = self.store.find(self.pod_type, pod.ns, pod.name)
            if existing is None:
                existing = self.store.create(self.pod_type, pod.ns, obj)
            if existing.get("status") != status:
                existing["status"] = status
                self.store.update(self.pod_type, pod.ns, pod.name, existing, subresource="status")
        except ApiError:
            pass

    # the kubelet ------------------------------------------------------------------------------
    def service_addresses(self, ns, pod_labels, container, pod_name=None, service_name=None):
        """For each container port: the pod's own loopback address when a headless Service
        named `service_name` (a StatefulSet's `serviceName`) gives the pod `pod_name` a stable
        DNS name, and the addresses of the Services with a virtual address that forward to it."""
        named = {p.get("name"): p["containerPort"] for p in container.get("ports", []) if p.get("name")}
        numbers = {p["containerPort"] for p in container.get("ports", [])}
        own, services = {}, {}
        for svc in self.store.list(self.svc_type, ns):
            spec = svc.get("spec", {})
            selector = spec.get("selector")
            if not selector:
                continue
            if not labels_match(pod_labels, [(k, "=", v) for k, v in selector.items()]):
                continue
            headless = spec.get("clusterIP") == "None"
            if headless and not (pod_name and svc["metadata"]["name"] == service_name):
                continue
            for sp in spec.get("ports", []):
                target = sp.get("targetPort", sp["port"])
                cport = named.get(target) if isinstance(target, str) else target
                if cport not in numbers:
                    continue
                if headless:
                    host = f"{pod_name}.{svc['metadata']['name']}.{ns}.svc:{sp['port']}"
                    own.setdefault(cport, self.network.reserve(host))
                else:
                    services.setdefault(cport, []).append(f"{svc['metadata']['name']}.{ns}.svc:{sp['port']}")
        return own, services

    async def start(self, sts, ordinal, template_hash, plural="statefulsets"):
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        spec = sts["spec"]
        pod_spec = spec["template"]["spec"]
        labels = spec["template"].get("metadata", {}).get("labels") or {}
        containers = pod_spec.get("containers", [])
        if len(containers) != 1 or pod_spec.get("initContainers"):
            raise Unsupported("exactly one container and no init containers")
        c = containers[0]
        pod = Pod(ns, name, ordinal, template_hash, plural)
        self.starts += 1
        pod.dir = self.root / "pods" / ns / f"{pod.name}.{self.starts}"
        pod.dir.mkdir(parents=True)

        # Volumes.
        dirs = {}
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
        for v in pod_spec.get("volumes") or []:
            d = pod.dir / "volumes" / v["name"]
            if "configMap" in v:
                cm = self.store.find(self.cm_type, ns, v["configMap"]["name"])
                if cm is None:
                    shutil.rmtree(pod.dir)
                    raise NotYet(f"ConfigMap {v['configMap']['name']} does not exist yet")
                data = decode_config_map_data(cm)
                d.mkdir(parents=True)
                items = v["configMap"].get("items") or [{"key": k, "path": k} for k in data]
                for it in items:
                    (d / it["path"]).parent.mkdir(parents=True, exist_ok=True)
                    (d / it["path"]).write_bytes(data[it["key"]])
            elif "emptyDir" in v:
                d.mkdir(parents=True)
            elif "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                if self.store.find(self.pvc_type, ns, claim) is None:
                    shutil.rmtree(pod.dir)
                    raise NotYet(f"PersistentVolumeClaim {claim} does not exist yet")
                d = self.root / "claims" / ns / claim
                d.mkdir(parents=True, exist_ok=True)
            else:
                raise Unsupported(f"volume {v['name']}: only configMap, emptyDir and persistentVolumeClaim volumes")
            dirs[v["name"]] = d
        for claim in claims:
            d = self.root / "volumes" / ns / f"{claim}-{name}-{ordinal}"
            d.mkdir(parents=True, exist_ok=True)
            dirs[claim] = d
        for m in c.get("volumeMounts") or []:
            if m["name"] not in dirs:
                raise Unsupported(f"mount of unknown volume {m['name']}")
            pod.volumes[m["mountPath"].rstrip("/")] = str(dirs[m["name"]] / m.get("subPath", ""))

        # Ports.
        service_name = spec.get("serviceName") if plural == "statefulsets" else None
        own, services = self.service_addresses(ns, labels, c, pod.name, service_name)
        for p in c.get("ports", []):
            cport = p["containerPort"]
            addr = own.get(cport, f"127.0.0.1:{free_port()}")
            pod.ports[cport] = int(addr.rsplit(":", 1)[1])
        pod.services = [(host, pod.ports[cport]) for cport, hosts in services.items() for host in hosts]

        # Environment, then the command line (which may name its variables).
        command = c.get("command") or ["tributary"]
        exe = os.path.basename(command[0])
        if exe not in self.binaries:
            raise Unsupported(f"no local binary for entrypoint {command[0]!r}")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(pod.dir)}
        defined = {}
        fields = {"metadata.name": pod.name, "metadata.namespace": ns, "status.podIP": "127.0.0.1", "spec.nodeName": "localhost"}
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = self.rewrite(pod, expand(e["value"], defined))
            elif "fieldRef" in (e.get("valueFrom") or {}):
                env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            elif "configMapKeyRef" in (e.get("valueFrom") or {}):
                ref = e["valueFrom"]["configMapKeyRef"]
                cm = self.store.find(self.cm_type, ns, ref["name"]) or {}
                env[e["name"]] = (cm.get("data") or {})[ref["key"]]
            elif "secretKeyRef" in (e.get("valueFrom") or {}):
                ref = e["valueFrom"]["secretKeyRef"]
                secret = self.store.find(self.secret_type, ns, ref["name"])
                values = {k: base64.b64decode(v).decode() for k, v in ((secret or {}).get("data") or {}).items()}
                values.update((secret or {}).get("stringData") or {})
                if ref["key"] not in values:
                    shutil.rmtree(pod.dir)
                    raise NotYet(f"Secret {ref['name']} with key {ref['key']} does not exist yet")
                env[e["name"]] = values[ref["key"]]
            else:
                raise Unsupported(f"env {e['name']}: only value, fieldRef, configMapKeyRef and secretKeyRef")
            defined[e["name"]] = env[e["name"]]
        pod.env = env
        pod.argv = [self.binaries[exe]] + [self.rewrite(pod, expand(a, defined)) for a in command[1:] + (c.get("args") or [])]
        pod.probe = self.probe_spec(c.get("readinessProbe"))
        pod.grace = min(pod_spec.get("terminationGracePeriodSeconds", 30), 10)
        pod.workdir = c.get("workingDir") and self.rewrite(pod, c["workingDir"]) or str(pod.dir)
        self.pods[(ns, name, ordinal)] = pod
        for host, port in pod.services:
            self.network.add_backend(host, pod, port)
            await self.network.ensure_proxy(host)
        await self.launch(pod)
        pod.task = asyncio.get_running_loop().create_task(self.supervise(pod))

    def rewrite(self, pod, value):
        """A mount path becomes its directory; `ADDR:PORT` of a container port becomes the
        pod's loopback address. `--flag=VALUE` is rewritten in its VALUE."""
        if value.startswith("--") and "=" in value:
            flag, v = value.split("=", 1)
            return f"{flag}={self.rewrite(pod, v)}"
        for mount in sorted(pod.volumes, key=len, reverse=True):
            if value == mount or value.startswith(mount + "/"):
                return pod.volumes[mount] + value[len(mount):]
        m = re.fullmatch(r"(0\.0\.0\.0|\[::\]|::|localhost|127\.0\.0\.1|)?:(\d+)", value)
        if m and int(m.group(2)) in pod.ports:
            return f"127.0.0.1:{pod.ports[int(m.group(2))]}"
        # Cluster DNS: a Service address resolves to the loopback address behind it.
        return re.sub(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.svc:\d+", lambda h: self.network.reserve(h.group(0)), value)

    @staticmethod
    def probe_spec(probe):
        """(port, path) of an httpGet readiness probe, or None without a probe."""
        if not probe:
            return None
        get = probe.get("httpGet")
        if not get:
            raise Unsupported("only httpGet readiness probes")
        return get["port"], get.get("path", "/")

    @staticmethod
    def probe_target(pod, container_ports):
        port, path = pod.probe
        if isinstance(port, str):
            port = container_ports[port]
        return f"http://127.0.0.1:{pod.ports[port]}{path}"

    async def launch(self, pod):
        pod.log = open(pod.dir / "log", "ab")
        pod.proc = await asyncio.create_subprocess_exec(
            *pod.argv, env=pod.env, cwd=pod.workdir, stdout=pod.log, stderr=pod.log, start_new_session=True
        )
        self.log_event(pod.ns, pod.name, f"started pid {pod.proc.pid}: {' '.join(pod.argv)}")

    async def supervise(self, pod):
        """Readiness probing and restarts, for the pod's lifetime."""
        sts = self.store.find(self.workload_types[pod.plural], pod.ns, pod.sts_name)
        c = sts["spec"]["template"]["spec"]["containers"][0]
        named = {p.get("name"): p["containerPort"] for p in c.get("ports", []) if p.get("name")}
        url = self.probe_target(pod, named) if pod.probe else None
        backoff = 0.5
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while not pod.stopping:
                if pod.proc.returncode is not None:
                    pod.ready = False
                    self.log_event(pod.ns, pod.name, f"exited with {pod.proc.returncode}; restarting")
                    self.report(pod.ns, pod.sts_name, pod.plural)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5)
                    if pod.stopping:
                        break
                    pod.restarts += 1
                    await self.launch(pod)
                    continue
                ready = True
                if url:
                    try:
                        async with http.get(url) as r:
                            ready = r.status == 200
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        ready = False
                if ready != pod.ready:
                    pod.ready = ready
                    self.log_event(pod.ns, pod.name, "ready" if ready else "not ready")
                    self.report(pod.ns, pod.sts_name, pod.plural)
                await asyncio.sleep(0.2 if not pod.ready else 1.0)

    async def stop(self, pod):
        pod.stopping = True
        self.network.remove_backends(pod)
        self.pods.pop((pod.ns, pod.sts_name, pod.ordinal), None)
        if pod.proc and pod.proc.returncode is None:
            pod.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(pod.proc.wait(), timeout=pod.grace)
            except asyncio.TimeoutError:
                pod.proc.kill()
                await pod.proc.wait()
        self.log_event(pod.ns, pod.name, f"stopped (exit {pod.proc.returncode if pod.proc else None})")
        if pod.task:
            pod.task.cancel()
        if pod.log:
            pod.log.close()
        try:
            self.store.delete(self.pod_type, pod.ns, pod.name)
        except ApiError:
            pass

    async def shutdown(self):
        for pod in list(self.pods.values()):
            await self.stop(pod)
        await self.network.close()

    def pod(self, ns, name):
        """The running pod `name` (`STATEFULSET-ORDINAL`), or None."""
        for (pns, sts, ordinal), p in self.pods.items():
            if pns == ns and f"{sts}-{ordinal}" == name:
                return p
        return None
