"""A fake Kubernetes API server, good enough to run the real `tributary-operator` against.

Why not PyPI `kmock`: its emulator has no resourceVersions, no status subresource, treats every
patch (server-side apply and JSON patch included) as a dict merge, and has no garbage
collection; making it fit meant subclassing its internals. This file implements exactly what the
operator, `tributary-operator crd install` and the test use, over real HTTP:

- discovery (`/api`, `/apis`, `/api/v1`, `/apis/GROUP/VERSION`, `/version`);
- list (with label and `metadata.name`/`metadata.namespace` field selectors), watch (history
  replay from a resourceVersion, then live events; `timeoutSeconds`), get, create, replace,
  delete, for every built-in kind listed in `BUILTINS` and for every CustomResourceDefinition
  created through the API (resources are registered when the CRD is);
- patches: JSON patch (RFC 6902, as the kube-rs finalizer helper sends it, including `test` of a
  missing path against null), merge patch (RFC 7386; strategic merge is treated the same) and
  server-side apply with per-manager field ownership: fields a manager stops applying are
  removed, lists are atomic;
- the `status` and `scale` subresources (scale paths come from the CRD, `spec.replicas` for
  StatefulSets); main-resource writes never change status and status writes change nothing else;
- `metadata.generation` bumped on spec changes only, no-op writes that change nothing (no new
  resourceVersion, no watch event), finalizers with `deletionTimestamp`, background garbage
  collection through `ownerReferences`;
- CRD structural-schema defaulting (how a Stream's conditions start as `Unknown`).

Not modelled: validation (schema, CEL, immutability), admission, authentication/RBAC,
conflicts between field managers, list-map merge keys, pagination. Those need a real cluster.
"""

import asyncio
import base64
import copy
import datetime
import json
import uuid

import yaml
from aiohttp import web

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """A Kubernetes `Status` failure."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self):
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


class ResourceType:
    """One served resource: where it lives in the URL space and what it supports."""

    def __init__(self, group, version, plural, kind, namespaced, subresources=(), **extra):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.subresources = set(subresources)
        self.singular = extra.get("singular", kind.lower())
        self.short_names = extra.get("short_names", [])
        self.categories = extra.get("categories", [])
        self.schema = extra.get("schema")
        # (spec path, status path) of the replicas the scale subresource maps.
        self.scale = extra.get("scale")

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self):
        return (self.group, self.version, self.plural)


def _builtin(api_version, plural, kind, namespaced=True, subresources=(), scale=None):
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, plural, kind, namespaced, subresources, scale=scale)


BUILTINS = [
    _builtin("v1", "namespaces", "Namespace", namespaced=False, subresources=["status"]),
    _builtin("v1", "configmaps", "ConfigMap"),
    _builtin("v1", "services", "Service", subresources=["status"]),
    _builtin("v1", "pods", "Pod", subresources=["status"]),
    _builtin("v1", "events", "Event"),
    _builtin("v1", "persistentvolumeclaims", "PersistentVolumeClaim", subresources=["status"]),
    _builtin("v1", "secrets", "Secret"),
    _builtin(
        "apps/v1",
        "deployments",
        "Deployment",
        subresources=["status", "scale"],
        scale=(".spec.replicas", ".status.replicas"),
    ),
    _builtin(
        "apps/v1",
        "statefulsets",
        "StatefulSet",
        subresources=["status", "scale"],
        scale=(".spec.replicas", ".status.replicas"),
    ),
    _builtin("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", subresources=["status"]),
    _builtin("events.k8s.io/v1", "events", "Event"),
    _builtin("coordination.k8s.io/v1", "leases", "Lease"),
    _builtin(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        subresources=["status"],
    ),
]

# --- JSON helpers -----------------------------------------------------------------------------


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


_MISSING = object()


def _walk(doc, parts):
    for p in parts:
        if isinstance(doc, dict):
            doc = doc.get(p, _MISSING)
        elif isinstance(doc, list) and p.isdigit() and int(p) < len(doc):
            doc = doc[int(p)]
        else:
            return _MISSING
        if doc is _MISSING:
            return _MISSING
    return doc


def json_patch(doc, ops):
    """RFC 6902 add/remove/replace/test/move/copy. As in the real apiserver, `test` of a missing
    path passes when the expected value is null (the kube-rs finalizer helper relies on it)."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "test":
            found = _walk(doc, parts)
            want = op.get("value")
            if not (found == want or (found is _MISSING and want is None)):
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
            continue
        if kind in ("move", "copy"):
            value = _walk(doc, _pointer(op["from"]))
            if value is _MISSING:
                raise ApiError(422, "Invalid", f"no value at {op['from']}")
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
            kind, op = "add", {"value": copy.deepcopy(value)}
        parent = _walk(doc, parts[:-1])
        if parent is _MISSING or not parts:
            raise ApiError(422, "Invalid", f"no parent for {op.get('path')}")
        last = parts[-1]
        if isinstance(parent, dict):
            if kind in ("remove", "replace") and last not in parent:
                raise ApiError(422, "Invalid", f"no value at {op.get('path')}")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif isinstance(parent, list):
            if last == "-" and kind == "add":
                parent.append(copy.deepcopy(op["value"]))
                continue
            if not last.isdigit() or int(last) > len(parent) - (0 if kind == "add" else 1):
                raise ApiError(422, "Invalid", f"bad index in {op.get('path')}")
            i = int(last)
            if kind == "add":
                parent.insert(i, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[i]
            else:
                parent[i] = copy.deepcopy(op["value"])
        else:
            raise ApiError(422, "Invalid", f"cannot patch into {op.get('path')}")
    return doc


def leaves(value, prefix=()):
    """Paths of the leaves of `value`: scalars and lists (lists are atomic here)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, prefix + (k,))
    elif prefix:
        yield prefix


def remove_path(doc, path):
    """Removes `path` and then every ancestor dict that became empty."""
    chain = [doc]
    for p in path[:-1]:
        nxt = chain[-1].get(p) if isinstance(chain[-1], dict) else None
        if not isinstance(nxt, dict):
            return
        chain.append(nxt)
    chain[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 1, -1):
        if chain[depth] == {}:
            chain[depth - 1].pop(path[depth - 1], None)


def drop_nulls(value):
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def apply_defaults(value, schema):
    """Structural-schema defaulting, as the apiserver does for custom resources."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k, sub in props.items():
            if k not in value and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
            if k in value:
                apply_defaults(value[k], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k, v in value.items():
                if k not in props:
                    apply_defaults(v, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def get_path(doc, dotted):
    for p in dotted.strip(".").split("."):
        doc = doc.get(p) if isinstance(doc, dict) else None
    return doc


def set_path(doc, dotted, value):
    parts = dotted.strip(".").split(".")
    for p in parts[:-1]:
        doc = doc.setdefault(p, {})
    doc[parts[-1]] = value


def parse_label_selector(text):
    """`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated (set-based `in` is not needed)."""
    reqs = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif term.startswith("!"):
            reqs.append((term[1:].strip(), "!", None))
        else:
            reqs.append((term, "exists", None))
    return reqs


def labels_match(labels, reqs):
    labels = labels or {}
    for k, op, v in reqs:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


def fields_match(obj, text):
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        k, v = k.strip(), v.strip().lstrip("=")
        have = get_path(obj, k)
        if (have == v) == neg:
            return False
    return True


def without_bookkeeping(obj):
    o = copy.deepcopy(obj)
    meta = o.get("metadata", {})
    for k in ("resourceVersion", "managedFields", "generation"):
        meta.pop(k, None)
    return o


# --- the store ----------------------------------------------------------------------------------


class Store:
    """Objects, their history, and what watches them. Every method runs on the server's event
    loop without awaiting, so each one is atomic."""

    def __init__(self):
        self.rv = 0
        self.types = {t.key: t for t in BUILTINS}
        self.objects = {}  # (group, plural, namespace, name) -> object
        self.owned_fields = {}  # (object key, manager, subresource) -> set of leaf paths
        self.history = []  # (rv, type key, event type, object snapshot)
        self.watchers = set()  # (ResourceType, namespace, filter, asyncio.Queue)
        self.listeners = []  # callables(event type, ResourceType, object), in-process
        self.requests = []  # (method, path, query string, content type)
        self.create(self.type_for("", "v1", "namespaces"), None, {"metadata": {"name": "default"}})

    # lookup ---------------------------------------------------------------------------------
    def type_for(self, group, version, plural):
        t = self.types.get((group, version, plural))
        if t is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({group}/{version} {plural})")
        return t

    def type_of_kind(self, api_version, kind):
        for t in self.types.values():
            if t.api_version == api_version and t.kind == kind:
                return t
        return None

    @staticmethod
    def obj_key(t, ns, name):
        return (t.group, t.plural, ns if t.namespaced else "", name)

    def get(self, t, ns, name):
        obj = self.objects.get(self.obj_key(t, ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{t.plural}.{t.group or "core"} "{name}" not found')
        return copy.deepcopy(obj)

    def find(self, t, ns, name):
        obj = self.objects.get(self.obj_key(t, ns, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, t, ns=None, label_selector=None, field_selector=None):
        reqs = parse_label_selector(label_selector)
        out = []
        for (g, p, ons, _), obj in sorted(self.objects.items()):
            if (g, p) != (t.group, t.plural) or (ns and ons != ns):
                continue
            if labels_match(obj["metadata"].get("labels"), reqs) and fields_match(obj, field_selector):
                out.append(copy.deepcopy(obj))
        return out

    # events ---------------------------------------------------------------------------------
    def _emit(self, etype, t, obj):
        snap = copy.deepcopy(obj)
        self.history.append((self.rv, t.key, etype, snap))
        for wt, ns, match, queue in list(self.watchers):
            if wt.key == t.key and (not ns or snap["metadata"].get("namespace") == ns) and match(snap):
                queue.put_nowait({"type": etype, "object": snap})
        for listener in self.listeners:
            listener(etype, t, copy.deepcopy(snap))

    def _bump(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    # writes -----------------------------------------------------------------------------------
    def create(self, t, ns, obj, manager=None):
        """Creates `obj`; with `manager`, as that manager's server-side apply."""
        applied = self._applied_part(t, obj, None) if manager else None
        obj = drop_nulls(copy.deepcopy(obj))
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        if t.namespaced:
            ns = ns or meta.get("namespace") or "default"
            if meta.get("namespace", ns) != ns:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the request")
            meta["namespace"] = ns
        key = self.obj_key(t, ns, name)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{t.plural}.{t.group or "core"} "{name}" already exists')
        obj["apiVersion"], obj["kind"] = t.api_version, t.kind
        if "status" in t.subresources:
            obj.pop("status", None)
        for k in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(k, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if t.schema:
            apply_defaults(obj, t.schema)
        if manager:
            self._own(obj, key, manager, None, applied)
        self._bump(obj)
        self.objects[key] = obj
        self._after_write(t, obj)
        self._emit("ADDED", t, obj)
        return copy.deepcopy(obj)

    def update(self, t, ns, name, new, subresource=None, expect_rv=None):
        """Stores `new` as the next state of the object (main resource or `status`)."""
        key = self.obj_key(t, ns, name)
        old = self.objects.get(key)
        if old is None:
            raise ApiError(404, "NotFound", f'{t.plural}.{t.group or "core"} "{name}" not found')
        if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {t.plural} "{name}": the object has been modified')
        new = drop_nulls(copy.deepcopy(new))
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            if "status" in t.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
            for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if k in old_meta:
                    meta[k] = old_meta[k]
                else:
                    meta.pop(k, None)
            if old_meta.get("deletionTimestamp"):
                # Finalizers can only be removed from an object that is being deleted.
                meta["finalizers"] = [f for f in meta.get("finalizers", []) if f in old_meta.get("finalizers", [])]
            new["apiVersion"], new["kind"] = t.api_version, t.kind
            spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
            if spec_of(new) != spec_of(old):
                meta["generation"] = old_meta.get("generation", 1) + 1
        if t.schema:
            apply_defaults(new, t.schema)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if without_bookkeeping(new) == without_bookkeeping(old) and new["metadata"].get(
            "generation"
        ) == old["metadata"].get("generation"):
            # A write that changes nothing is not a change: no new resourceVersion, no event.
            return copy.deepcopy(old)
        self._bump(new)
        self.objects[key] = new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(t, key)
        else:
            self._after_write(t, new)
            self._emit("MODIFIED", t, new)
        return copy.deepcopy(new)

    def apply(self, t, ns, name, config, manager, subresource=None):
        """Server-side apply by `manager`: merge its configuration and remove the fields it
        applied last time and no longer does."""
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH with apply requires a fieldManager")
        config = copy.deepcopy(config)
        if not isinstance(config, dict):
            raise ApiError(400, "BadRequest", "an apply configuration is an object")
        if config.get("metadata", {}).get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        key = self.obj_key(t, ns, name)
        if key not in self.objects:
            if subresource:
                raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found')
            config.setdefault("metadata", {})["name"] = name
            return self.create(t, ns, config, manager=manager)
        current = copy.deepcopy(self.objects[key])
        applied = self._applied_part(t, config, subresource)
        merged = merge_patch(current, applied)
        self._own(merged, key, manager, subresource, applied)
        return self.update(t, ns, name, merged, subresource=subresource)

    @staticmethod
    def _applied_part(t, config, subresource):
        if subresource == "status":
            return {"status": config.get("status")} if "status" in config else {}
        out = {k: v for k, v in config.items() if k not in ("apiVersion", "kind", "status" if "status" in t.subresources else "")}
        meta = config.get("metadata", {})
        out["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences", "finalizers") if k in meta}
        return out

    def _own(self, obj, key, manager, subresource, applied):
        """Records what `manager` applied and removes from `obj` what it applied before and
        no longer does (when no path it applies now overlaps that path)."""
        paths = set(leaves(drop_nulls(applied)))
        before = self.owned_fields.get((key, manager, subresource), set())
        for gone in before - paths:
            overlaps = any(p[: len(gone)] == gone or gone[: len(p)] == p for p in paths)
            if not overlaps:
                remove_path(obj, gone)
        self.owned_fields[(key, manager, subresource)] = paths
        entries = [e for e in obj["metadata"].get("managedFields", []) if (e.get("manager"), e.get("subresource")) != (manager, subresource)]
        entry = {"manager": manager, "operation": "Apply", "apiVersion": obj.get("apiVersion"), "time": now(), "fieldsType": "FieldsV1"}
        if subresource:
            entry["subresource"] = subresource
        obj["metadata"]["managedFields"] = entries + [entry]

    def delete(self, t, ns, name):
        key = self.obj_key(t, ns, name)
        obj = self.objects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{t.plural}.{t.group or "core"} "{name}" not found')
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                self._bump(obj)
                self.objects[key] = obj
                self._emit("MODIFIED", t, obj)
            return copy.deepcopy(obj)
        return self._remove(t, key)

    def _remove(self, t, key):
        obj = self.objects.pop(key)
        for k in [k for k in self.owned_fields if k[0] == key]:
            del self.owned_fields[k]
        self._bump(obj)
        self._emit("DELETED", t, obj)
        if t.plural == "customresourcedefinitions":
            self._unregister(obj)
        self._collect_garbage(obj["metadata"]["uid"])
        return copy.deepcopy(obj)

    def _collect_garbage(self, owner_uid):
        """Background cascading deletion: what the garbage collector does for dependents."""
        for key, obj in list(self.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == owner_uid for r in refs) and key in self.objects:
                t = next(t for t in self.types.values() if (t.group, t.plural) == key[:2])
                self.delete(t, key[2], key[3])

    # CRDs -------------------------------------------------------------------------------------
    def _after_write(self, t, obj):
        if t.plural == "customresourcedefinitions":
            self._register(obj)

    def _register(self, crd):
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for v in spec.get("versions", []):
            if not v.get("served", True):
                continue
            sub = v.get("subresources") or {}
            scale = sub.get("scale")
            t = ResourceType(
                spec["group"],
                v["name"],
                names["plural"],
                names["kind"],
                spec.get("scope") == "Namespaced",
                subresources=list(sub),
                singular=names.get("singular"),
                short_names=names.get("shortNames", []),
                categories=names.get("categories", []),
                schema=(v.get("schema") or {}).get("openAPIV3Schema"),
                scale=(scale["specReplicasPath"], scale["statusReplicasPath"]) if scale else None,
            )
            self.types[t.key] = t
        # The real apiserver reports this asynchronously; here it is at once.
        status = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "", "lastTransitionTime": now()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "", "lastTransitionTime": now()},
            ],
        }
        if crd.get("status", {}).get("conditions") is None:
            crd["status"] = status

    def _unregister(self, crd):
        spec = crd.get("spec", {})
        for v in spec.get("versions", []):
            self.types.pop((spec["group"], v["name"], spec["names"]["plural"]), None)


# --- HTTP ---------------------------------------------------------------------------------------


class FakeApiServer:
    """The store behind an aiohttp server on 127.0.0.1."""

    def __init__(self, store=None):
        self.store = store or Store()
        self.closing = asyncio.Event()
        self.runner = None
        self.url = None

    async def start(self, port=0):
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self):
        self.closing.set()
        await asyncio.sleep(0.05)
        if self.runner:
            await self.runner.cleanup()

    async def handle(self, request):
        self.store.requests.append((request.method, request.path, request.query_string, request.headers.get("Content-Type", "")))
        try:
            return await self.route(request)
        except ApiError as e:
            return web.json_response(e.status(), status=e.code)

    async def route(self, request):
        path = request.path.rstrip("/")
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-tributary-fake", "platform": "linux/amd64"})
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return web.json_response(self.group_list())
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find {path}")
        if not rest:
            return web.json_response(self.resource_list(group, version))
        t, ns, name, sub = self.parse(group, version, rest)
        return await self.serve(request, t, ns, name, sub)

    def parse(self, group, version, rest):
        s = self.store
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in s.types:
            ns, rest = rest[1], rest[2:]
        t = s.type_for(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        if sub and sub not in t.subresources:
            raise ApiError(404, "NotFound", f"{t.plural} has no subresource {sub}")
        if t.namespaced and name and not ns:
            raise ApiError(404, "NotFound", f"{t.plural} is namespaced")
        return t, ns, name, sub

    def group_list(self):
        groups = {}
        for t in self.store.types.values():
            if t.group:
                groups.setdefault(t.group, set()).add(t.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs)],
                    "preferredVersion": {"groupVersion": f"{g}/{sorted(vs)[-1]}", "version": sorted(vs)[-1]},
                }
                for g, vs in sorted(groups.items())
            ],
        }

    def resource_list(self, group, version):
        types = [t for t in self.store.types.values() if (t.group, t.version) == (group, version)]
        if not types:
            raise ApiError(404, "NotFound", f"no resources in {group}/{version}")
        out = []
        for t in sorted(types, key=lambda t: t.plural):
            out.append({"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind, "verbs": ALL_VERBS, "shortNames": t.short_names, "categories": t.categories})
            for sub in sorted(t.subresources):
                kind = "Scale" if sub == "scale" else t.kind
                out.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced, "kind": kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": types[0].api_version, "resources": out}

    async def body(self, request):
        raw = await request.read()
        if not raw:
            return None
        try:
            if "yaml" in request.headers.get("Content-Type", ""):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(400, "BadRequest", f"cannot decode the body: {e}")

    async def serve(self, request, t, ns, name, sub):
        s, q, m = self.store, request.query, request.method
        if name is None:
            if m == "GET" and q.get("watch") in ("1", "true"):
                return await self.watch(request, t, ns)
            if m == "GET":
                items = s.list(t, ns, q.get("labelSelector"), q.get("fieldSelector"))
                return web.json_response({"apiVersion": t.api_version, "kind": f"{t.kind}List", "metadata": {"resourceVersion": str(s.rv)}, "items": items})
            if m == "POST":
                body = await self.body(request)
                return web.json_response(s.create(t, ns, body or {}, manager=None), status=201)
            raise ApiError(405, "MethodNotAllowed", f"{m} on a collection")
        if sub == "scale":
            return await self.scale(request, t, ns, name)
        if m == "GET":
            obj = s.get(t, ns, name)
            if "as=PartialObjectMetadata" in request.headers.get("Accept", ""):
                # A metadata-only GET (kube-rs `get_metadata`): no data, no spec, no status.
                return web.json_response({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]})
            return web.json_response(obj)
        if m == "DELETE":
            return web.json_response(s.delete(t, ns, name))
        body = await self.body(request)
        if m == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "PUT needs an object")
            rv = body.get("metadata", {}).get("resourceVersion")
            return web.json_response(s.update(t, ns, name, body, subresource=sub, expect_rv=rv))
        if m == "PATCH":
            ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                existed = s.find(t, ns, name) is not None
                out = s.apply(t, ns, name, body, q.get("fieldManager"), subresource=sub)
                return web.json_response(out, status=200 if existed else 201)
            current = s.get(t, ns, name)
            if ctype == "application/json-patch+json":
                patched = json_patch(current, body)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                patched = merge_patch(current, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {ctype!r}")
            return web.json_response(s.update(t, ns, name, patched, subresource=sub))
        raise ApiError(405, "MethodNotAllowed", f"{m} on an object")

    async def scale(self, request, t, ns, name):
        """`/scale`: an autoscaling/v1 Scale view of the replicas paths."""
        s = self.store
        spec_path, status_path = t.scale
        obj = s.get(t, ns, name)

        def view(o):
            sel = get_path(o, ".status.selector")
            if t.plural in ("statefulsets", "deployments"):
                labels = get_path(o, ".spec.selector.matchLabels") or {}
                sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            return {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {k: o["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in o["metadata"]},
                "spec": {"replicas": get_path(o, spec_path) or 0},
                "status": {"replicas": get_path(o, status_path) or 0, "selector": sel or ""},
            }

        if request.method == "GET":
            return web.json_response(view(obj))
        body = await self.body(request)
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        current = view(obj)
        if request.method == "PUT" or ctype == "application/apply-patch+yaml":
            wanted = merge_patch(current, body)
        elif ctype == "application/json-patch+json":
            wanted = json_patch(current, body)
        else:
            wanted = merge_patch(current, body)
        replicas = get_path(wanted, ".spec.replicas")
        if not isinstance(replicas, int):
            raise ApiError(422, "Invalid", "spec.replicas must be an integer")
        set_path(obj, spec_path, replicas)
        return web.json_response(view(s.update(t, ns, name, obj)))

    async def watch(self, request, t, ns):
        s, q = self.store, request.query
        reqs = parse_label_selector(q.get("labelSelector"))
        fsel = q.get("fieldSelector")
        match = lambda o: labels_match(o["metadata"].get("labels"), reqs) and fields_match(o, fsel)
        queue = asyncio.Queue()
        since = q.get("resourceVersion") or "0"
        # Atomic with respect to writes: no await between the snapshot and registering.
        if since == "0":
            backlog = [{"type": "ADDED", "object": o} for o in s.list(t, ns) if match(o)]
        else:
            if not since.isdigit():
                raise ApiError(400, "BadRequest", f"bad resourceVersion {since!r}")
            backlog = [
                {"type": e, "object": copy.deepcopy(o)}
                for rv, key, e, o in s.history
                if rv > int(since) and key == t.key and (not ns or o["metadata"].get("namespace") == ns) and match(o)
            ]
        for ev in backlog:
            queue.put_nowait(ev)
        watcher = (t, ns, match, queue)
        s.watchers.add(watcher)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while not self.closing.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=min(left, 1.0))
                except asyncio.TimeoutError:
                    continue
                await resp.write(json.dumps(ev).encode() + b"\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            s.watchers.discard(watcher)
        return resp


def decode_config_map_data(cm):
    """ConfigMap `data` and `binaryData` as bytes per key."""
    out = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out

