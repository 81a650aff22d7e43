"""The operator end to end, on this machine: the real `tributary-operator` against a fake API
server, the StatefulSets it creates run as real `tributary` processes, real AWS clients.

The tests form one scenario and run in file order, each starting where the previous one left
the cluster: apply `examples/streams/`, write and read, reshard, drift, consume, delete.
"""

import pathlib
import re
import time

import pytest
import yaml

from conftest import NAMESPACE, SYNC_SECONDS, example_docs

V1A1 = "tributary.dev/v1alpha1"
OWNER = "tributary-operator"

pytestmark = pytest.mark.usefixtures("operator")


def condition(obj, type_):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"], c.get("reason")
    return None


def ready(kube, kind, name):
    """The object once `Ready=True` for its current generation, else None."""
    obj = kube.get(V1A1, kind, name)
    if (
        obj
        and condition(obj, "Ready") == ("True", "Active")
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    ):
        return obj
    return None


def example(kind, name):
    return next(d for d in example_docs(kind) if d["metadata"]["name"] == name)


def open_shards(kinesis, stream):
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def read_all(kinesis, stream):
    """Every record of every shard (open and closed), from the trim horizon."""
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=1000)
            out += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if page.get("MillisBehindLatest", 0) == 0 and not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return sorted(out)


def events_about(kube, name):
    """Events about `name`, oldest first by when they were last seen (a repeated event is one
    Event whose `series` the recorder updates)."""
    events = [e for e in kube.list("events.k8s.io/v1", "Event") if e.get("regarding", {}).get("name") == name]
    return sorted(events, key=lambda e: (e.get("series") or {}).get("lastObservedTime") or e.get("eventTime") or "")


def test_crds_installed_by_the_operator_binary_are_served(kube):
    crds = {c["metadata"]["name"] for c in kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")}
    assert crds == {
        "streams.tributary.dev",
        "streamconsumers.tributary.dev",
        "deliverystreams.tributary.dev",
        "analyticsapps.tributary.dev",
    }
    served = {r["name"] for r in kube.request("GET", f"/apis/{V1A1}")["resources"]}
    assert {"streams", "streams/status", "streams/scale", "streamconsumers/status"} <= served


def test_the_operator_leads_through_its_lease(kube):
    lease = kube.wait("the leader Lease", lambda: kube.get("coordination.k8s.io/v1", "Lease", "tributary-operator"))
    assert lease["spec"]["holderIdentity"] == "tributary-operator-0"


def test_example_streams_become_ready_with_their_shard_counts(kube):
    for doc in example_docs("Stream"):
        created = kube.apply(doc)
        # The CRD's schema defaults the conditions to Unknown until the operator reports.
        assert condition(created, "Ready") == ("Unknown", "NotReconciled")

    orders = kube.wait("orders Ready", lambda: ready(kube, "Stream", "orders"))
    st = orders["status"]
    assert st["openShardCount"] == example("Stream", "orders")["spec"]["shardCount"] == 2
    assert st["streamStatus"] == "ACTIVE"
    assert st["streamArn"] == "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    assert st["endpoint"] == f"http://orders.{NAMESPACE}.svc:4567"
    assert st["retentionPeriodHours"] == example("Stream", "orders")["spec"]["retentionPeriodHours"]
    assert condition(orders, "Reconciling")[0] == "False"
    assert condition(orders, "Stalled")[0] == "False"
    assert "tributary.dev/cleanup" in orders["metadata"]["finalizers"]

    clicks = kube.wait("clicks Ready", lambda: ready(kube, "Stream", "clicks"))
    assert clicks["status"]["openShardCount"] >= 1
    assert clicks["status"]["retentionPeriodHours"] == example("Stream", "clicks")["spec"]["retentionPeriodHours"]

    scale = kube.get(V1A1, "Stream", "orders", sub="scale")
    assert scale["spec"]["replicas"] == scale["status"]["replicas"] == 2
    assert scale["status"]["selector"] == st["selector"]


def test_each_stream_runs_as_the_pod_its_statefulset_describes(kube, cluster):
    orders = kube.get(V1A1, "Stream", "orders")
    sts = kube.wait("orders StatefulSet ready", lambda: (s := kube.get("apps/v1", "StatefulSet", "orders")) and s.get("status", {}).get("readyReplicas") == 1 and s)
    assert sts["status"]["observedGeneration"] == sts["metadata"]["generation"]

    # Every child is owned by the Stream (so it is garbage-collected with it) and applied by
    # the operator's one field manager.
    children = [
        ("apps/v1", "StatefulSet", "orders"),
        ("v1", "Service", "orders"),
        ("v1", "Service", "orders-pods"),
        ("v1", "ConfigMap", "orders-config"),
        ("policy/v1", "PodDisruptionBudget", "orders"),
    ]
    for api_version, kind, name in children:
        obj = kube.get(api_version, kind, name)
        assert obj, f"{kind} {name} exists"
        refs = obj["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [("Stream", orders["metadata"]["uid"], True)]
        assert {m["manager"] for m in obj["metadata"]["managedFields"]} == {OWNER}, kind

    # The process runs the pod spec's arguments, with the ConfigMap mounted as files and the
    # listen address moved to the loopback port behind the Service's address.
    pod = cluster.read(lambda: cluster.kubelet.pod(NAMESPACE, "orders-0"))
    assert pod is not None and pod.ready
    container = sts["spec"]["template"]["spec"]["containers"][0]
    args = pod.argv[1:]
    assert len(args) == len(container["args"]) and args[0] == "serve"
    # The pod listens at its stable DNS name under the headless Service; the client Service's
    # address forwards to it.
    api = cluster.network.addresses[f"orders-0.orders-pods.{NAMESPACE}.svc:4567"]
    assert args[args.index("--listen") + 1] == api
    assert cluster.read(lambda: cluster.network.pick(f"orders.{NAMESPACE}.svc:4567"))[0] is pod
    manifests = pathlib.Path(args[args.index("--manifests") + 1])
    (manifest,) = [yaml.safe_load(f.read_text()) for f in manifests.iterdir() if f.is_file()]
    assert (manifest["kind"], manifest["metadata"]["name"], manifest["spec"]["shardCount"]) == ("Stream", "orders", 2)
    assert pod.env["RUST_LOG"] == "info"
    podobj = kube.get("v1", "Pod", "orders-0")
    assert condition(podobj, "Ready") == ("True", None)


def test_records_written_through_the_service_address_are_read_back(kube, kinesis_for):
    orders = kube.get(V1A1, "Stream", "orders")
    kinesis = kinesis_for(orders["status"]["endpoint"])
    assert len(open_shards(kinesis, "orders")) == 2
    records = [{"Data": f"order-{i}".encode(), "PartitionKey": f"customer-{i % 7}"} for i in range(40)]
    out = kinesis.put_records(StreamName="orders", Records=records)
    assert out["FailedRecordCount"] == 0
    assert len({r["ShardId"] for r in out["Records"]}) == 2, "keys spread over both shards"
    assert read_all(kinesis, "orders") == sorted((r["PartitionKey"], r["Data"]) for r in records)

    clicks = kube.get(V1A1, "Stream", "clicks")
    ck = kinesis_for(clicks["status"]["endpoint"])
    for i in range(5):
        ck.put_record(StreamName="clicks", Data=f"click-{i}".encode(), PartitionKey=f"page-{i}")
    assert len(read_all(ck, "clicks")) == 5


def test_a_killed_data_plane_pod_restarts_with_every_acknowledged_record(kube, cluster, kinesis_for):
    pod = cluster.read(lambda: cluster.kubelet.pod(NAMESPACE, "orders-0"))
    pod.proc.kill()  # SIGKILL, mid-life: no shutdown, no flush
    kube.wait("orders-0 restarted and ready", lambda: pod.restarts == 1 and pod.ready, timeout=30)
    kube.wait("the StatefulSet ready again", lambda: (kube.get("apps/v1", "StatefulSet", "orders") or {}).get("status", {}).get("readyReplicas") == 1)
    orders = kube.wait("orders Ready", lambda: ready(kube, "Stream", "orders"))
    kinesis = kinesis_for(orders["status"]["endpoint"])
    assert len(read_all(kinesis, "orders")) == 40


def test_scaling_a_stream_reshards_it_through_the_data_plane(kube, kinesis_for):
    before = kube.get(V1A1, "Stream", "orders")
    # `kubectl scale stream/orders --replicas=4`: the /scale subresource maps to shardCount.
    kube.merge(V1A1, "Stream", "orders", {"spec": {"replicas": 4}}, sub="scale")
    scaled = kube.get(V1A1, "Stream", "orders")
    assert scaled["spec"]["shardCount"] == 4
    assert scaled["metadata"]["generation"] == before["metadata"]["generation"] + 1

    done = kube.wait(
        "orders resharded to 4",
        lambda: (s := ready(kube, "Stream", "orders")) and s["status"].get("openShardCount") == 4 and s,
    )
    assert "resharding" not in done["status"], "progress is cleared once the reshard completes"
    assert condition(done, "Reconciling")[0] == "False"
    # Events on the transitions (published just after the status is written), oldest first; on
    # a timeout the message lists the reasons seen.
    seen = []

    def resharding_then_active():
        seen[:] = [e["reason"] for e in events_about(kube, "orders")]
        return "Resharding" in seen and seen[-1] == "Active"

    try:
        kube.wait("Resharding then Active events", resharding_then_active)
    except AssertionError as e:
        raise AssertionError(f"{e}; event reasons: {seen}") from None

    kinesis = kinesis_for(done["status"]["endpoint"])
    assert len(open_shards(kinesis, "orders")) == 4
    # The records written before the reshard are still there, in the closed parent shards.
    assert len(read_all(kinesis, "orders")) == 40
    scale = kube.get(V1A1, "Stream", "orders", sub="scale")
    assert scale["spec"]["replicas"] == scale["status"]["replicas"] == 4


def test_a_paused_stream_is_left_alone_until_resumed(kube, kinesis_for):
    kube.merge(V1A1, "Stream", "orders", {"metadata": {"annotations": {"tributary.dev/pause-reconciliation": "true"}}})
    kube.wait("orders Paused", lambda: condition(kube.get(V1A1, "Stream", "orders"), "Ready") == ("Unknown", "Paused"))
    kube.merge(V1A1, "Stream", "orders", {"spec": {"shardCount": 2}})
    orders = kube.get(V1A1, "Stream", "orders")
    kinesis = kinesis_for(orders["status"]["endpoint"])
    time.sleep(1.5)
    assert len(open_shards(kinesis, "orders")) == 4, "no reshard while paused"

    kube.merge(V1A1, "Stream", "orders", {"metadata": {"annotations": {"tributary.dev/pause-reconciliation": None}}})
    kube.wait("orders back to 2 shards", lambda: (s := ready(kube, "Stream", "orders")) and s["status"]["openShardCount"] == 2)
    assert len(open_shards(kinesis, "orders")) == 2


def test_drift_is_reverted(kube, kinesis_for):
    orders = kube.get(V1A1, "Stream", "orders")
    spec = example("Stream", "orders")["spec"]
    kinesis = kinesis_for(orders["status"]["endpoint"])
    # Made through the Kinesis API, reverted on the next resync.
    kinesis.increase_stream_retention_period(StreamName="orders", RetentionPeriodHours=72)
    kinesis.add_tags_to_stream(StreamName="orders", Tags={"added-by-hand": "yes"})
    kube.wait(
        "retention and tags reverted",
        lambda: kinesis.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["RetentionPeriodHours"] == spec["retentionPeriodHours"]
        and {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName="orders")["Tags"]} == spec["tags"],
        timeout=SYNC_SECONDS * 4 + 10,
    )
    # Made to a child object: the operator watches its children and reapplies at once.
    old = kube.get("v1", "Service", "orders")
    kube.delete("v1", "Service", "orders")
    back = kube.wait("the orders Service recreated", lambda: (s := kube.get("v1", "Service", "orders")) and s["metadata"]["uid"] != old["metadata"]["uid"] and s)
    assert back["spec"]["ports"] == old["spec"]["ports"]


def test_a_stream_consumer_is_registered_and_publishes_its_arn(kube, kinesis_for):
    doc = example("StreamConsumer", "orders-dashboard")
    kube.apply(doc)
    consumer = kube.wait("the consumer Ready", lambda: (c := ready(kube, "StreamConsumer", "orders-dashboard")) and c["status"].get("consumerArn") and c)
    arn = consumer["status"]["consumerArn"]
    orders = kube.get(V1A1, "Stream", "orders")
    assert arn.startswith(orders["status"]["streamArn"] + "/consumer/dashboard:")
    kinesis = kinesis_for(orders["status"]["endpoint"])
    desc = kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]
    assert (desc["ConsumerName"], desc["ConsumerStatus"]) == ("dashboard", "ACTIVE")


def test_deleting_a_consumer_deregisters_it(kube, kinesis_for):
    orders = kube.get(V1A1, "Stream", "orders")
    kube.delete(V1A1, "StreamConsumer", "orders-dashboard")
    kube.wait("the consumer gone", lambda: kube.get(V1A1, "StreamConsumer", "orders-dashboard") is None)
    kinesis = kinesis_for(orders["status"]["endpoint"])
    assert kinesis.list_stream_consumers(StreamARN=orders["status"]["streamArn"])["Consumers"] == []


def metric(text, name, **labels):
    """The value of one sample of the operator's /metrics."""
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))) == labels:
            return float(m.group(2))
    return None


def test_the_operator_exports_reconcile_metrics(operator):
    text = operator.get("/metrics")
    assert metric(text, "tributary_operator_reconcile_runs_total", kind="Stream") > 0
    assert metric(text, "tributary_operator_reconcile_runs_total", kind="StreamConsumer") > 0
    # Both Streams are Ready; the deleted consumer is forgotten.
    assert metric(text, "tributary_operator_resources", kind="Stream", ready="True") == 2
    for ready in ("True", "False", "Unknown"):
        assert metric(text, "tributary_operator_resources", kind="StreamConsumer", ready=ready) == 0


def volume(cluster, stream):
    """The local directory behind the stream pod's persistent volume."""
    pod = cluster.read(lambda: cluster.kubelet.pod(NAMESPACE, f"{stream}-0"))
    return pathlib.Path(pod.volumes["/var/lib/tributary"])


def test_deleting_streams_honours_their_deletion_policy(kube, cluster):
    orders_volume, clicks_volume = volume(cluster, "orders"), volume(cluster, "clicks")
    assert any(orders_volume.rglob("*")) and any(clicks_volume.rglob("*"))
    procs = cluster.read(lambda: [p.proc for p in cluster.kubelet.pods.values()])

    for name in ("orders", "clicks"):
        kube.delete(V1A1, "Stream", name)
    for name in ("orders", "clicks"):
        kube.wait(f"Stream {name} gone (finalizer released)", lambda: kube.get(V1A1, "Stream", name) is None)

    # Children are garbage-collected, the pods stopped.
    for api_version, kind in [("apps/v1", "StatefulSet"), ("v1", "Service"), ("v1", "ConfigMap"), ("policy/v1", "PodDisruptionBudget"), ("v1", "Pod")]:
        kube.wait(f"no {kind} left", lambda: kube.list(api_version, kind) == [])
    kube.wait("data-plane processes stopped", lambda: all(p.returncode is not None for p in procs))

    # deletionPolicy: Delete deleted the stream in the data plane, then its volume went with
    # the StatefulSet; Retain kept both.
    assert "Deleted" in [e["reason"] for e in events_about(kube, "orders")]
    assert "Deleted" not in [e["reason"] for e in events_about(kube, "clicks")]
    kube.wait("the orders volume deleted", lambda: not orders_volume.exists())
    assert any(clicks_volume.rglob("*")), "the clicks volume is retained"


def test_a_retained_stream_is_adopted_with_its_data(kube, kinesis_for):
    kube.apply(example("Stream", "clicks"))
    clicks = kube.wait("clicks Ready again", lambda: ready(kube, "Stream", "clicks"))
    kinesis = kinesis_for(clicks["status"]["endpoint"])
    got = read_all(kinesis, "clicks")
    assert got == sorted((f"page-{i}", f"click-{i}".encode()) for i in range(5))

    kube.delete(V1A1, "Stream", "clicks")
    kube.wait("clicks gone", lambda: kube.get(V1A1, "Stream", "clicks") is None)
    kube.wait("no StatefulSet left", lambda: kube.list("apps/v1", "StatefulSet") == [])
