"""A multi-pod Stream (`shardsPerPod`) end to end: the real operator sizes the StatefulSet, the
fake kubelet runs one real `tributary` process per replica in cluster mode (its POD_NAME, its
stable DNS name under the headless Service, the token from the Secret the operator created),
and boto3 writes and reads through the Service, which spreads connections over the pods.

One scenario, in file order: 4 shards at 2 per pod → 2 pods; shardCount 6 → a third pod first,
then the reshard; every record stays readable; shardCount 3 keeps the 3 pods, which still hold
closed shards; deleting the Stream takes the Secret with it.
Needs the data plane's cluster mode (`--cluster-coordinator`).
"""

import base64
import json
import urllib.request

import pytest

from conftest import CLUSTER_EXAMPLES, NAMESPACE, example_docs
from test_operator_e2e import V1A1, condition, open_shards, read_all

pytestmark = pytest.mark.usefixtures("operator")

NAME = "events"


def doc():
    return next(d for d in example_docs("Stream", CLUSTER_EXAMPLES) if d["metadata"]["name"] == NAME)


def ready_with(kube, shards, pods):
    """The Stream once Ready for its generation with `shards` open shards on `pods` ready pods."""
    s = kube.get(V1A1, "Stream", NAME)
    if not s or condition(s, "Ready") != ("True", "Active"):
        return None
    st = s["status"]
    if st.get("observedGeneration") != s["metadata"]["generation"]:
        return None
    if (st.get("openShardCount"), st.get("replicas"), st.get("readyReplicas")) != (shards, pods, pods):
        return None
    return s


def cluster_view(cluster):
    """`GET /cluster` on pod 0's metrics port, as the operator reads it."""
    url = cluster.network.resolve(f"http://{NAME}-0.{NAME}-pods.{NAMESPACE}.svc:9567") + "/cluster"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def records(prefix, n):
    return [{"Data": f"{prefix}-{i}".encode(), "PartitionKey": f"key-{prefix}-{i}"} for i in range(n)]


def test_a_multi_pod_stream_runs_on_one_pod_per_shards_per_pod(kube, cluster):
    spec = doc()["spec"]
    assert (spec["shardCount"], spec["shardsPerPod"]) == (4, 2)
    kube.apply(doc())
    stream = kube.wait("events Ready on 2 pods", lambda: ready_with(kube, 4, 2), timeout=90)
    assert stream["status"]["endpoint"] == f"http://{NAME}.{NAMESPACE}.svc:4567"

    sts = kube.get("apps/v1", "StatefulSet", NAME)
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["podManagementPolicy"] == "Parallel"

    # The token Secret: created once by the operator, owned by the Stream.
    secret = kube.get("v1", "Secret", f"{NAME}-cluster")
    assert [r["uid"] for r in secret["metadata"]["ownerReferences"]] == [stream["metadata"]["uid"]]
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 32

    pods = cluster.read(lambda: [cluster.kubelet.pod(NAMESPACE, f"{NAME}-{i}") for i in range(2)])
    for i, pod in enumerate(pods):
        assert pod is not None and pod.ready
        assert pod.env["POD_NAME"] == f"{NAME}-{i}"
        assert pod.env["TRIBUTARY_CLUSTER_SECRET"] == token
        args = pod.argv[1:]
        own = cluster.network.addresses[f"{NAME}-{i}.{NAME}-pods.{NAMESPACE}.svc:4567"]
        assert args[args.index("--listen") + 1] == own
        # $(POD_NAME) expanded, then resolved like cluster DNS: each pod advertises itself...
        assert args[args.index("--cluster-advertise") + 1] == f"http://{own}"
        # ...and all name pod 0 as the coordinator.
        pod0 = cluster.network.addresses[f"{NAME}-0.{NAME}-pods.{NAMESPACE}.svc:4567"]
        assert args[args.index("--cluster-coordinator") + 1] == f"http://{pod0}"

    view = cluster_view(cluster)
    assert view["coordinator"] is True
    members = sorted(view["members"], key=lambda m: m["ordinal"])
    assert [(m["ordinal"], m["live"], m["openShards"]) for m in members] == [(0, True, 2), (1, True, 2)]


def test_records_written_through_the_service_are_read_back_from_every_pod(kube, kinesis_for):
    stream = kube.get(V1A1, "Stream", NAME)
    kinesis = kinesis_for(stream["status"]["endpoint"])
    assert len(open_shards(kinesis, NAME)) == 4
    batch = records("before", 60)
    out = kinesis.put_records(StreamName=NAME, Records=batch)
    assert out["FailedRecordCount"] == 0
    assert len({r["ShardId"] for r in out["Records"]}) == 4, "keys spread over all shards, on both pods"
    for i in range(5):
        kinesis.put_record(StreamName=NAME, Data=f"single-{i}".encode(), PartitionKey=f"single-{i}")
    want = sorted([(r["PartitionKey"], r["Data"]) for r in batch] + [(f"single-{i}", f"single-{i}".encode()) for i in range(5)])
    # Several connections through the Service, so several pods answer the reads.
    for _ in range(3):
        assert read_all(kinesis_for(stream["status"]["endpoint"]), NAME) == want


def test_a_larger_shard_count_adds_a_pod_then_reshards_onto_it(kube, cluster, kinesis_for):
    before = kube.get(V1A1, "Stream", NAME)
    kube.merge(V1A1, "Stream", NAME, {"spec": {"replicas": 6}}, sub="scale")
    assert kube.get(V1A1, "Stream", NAME)["spec"]["shardCount"] == 6

    done = kube.wait("events Ready with 6 shards on 3 pods", lambda: ready_with(kube, 6, 3), timeout=120)
    assert done["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert "resharding" not in done["status"]
    assert kube.get("apps/v1", "StatefulSet", NAME)["spec"]["replicas"] == 3

    kinesis = kinesis_for(done["status"]["endpoint"])
    assert len(open_shards(kinesis, NAME)) == 6
    # The third pod joined before the reshard, so it owns some of the new shards.
    members = {m["ordinal"]: m for m in cluster_view(cluster)["members"]}
    assert sorted(members) == [0, 1, 2]
    assert all(m["live"] for m in members.values())
    assert sum(m["openShards"] for m in members.values()) == 6
    assert members[2]["openShards"] > 0
    # Never fewer pods than the ones holding data.
    holding = max(o for o, m in members.items() if m["openShards"] + m["closedShards"] > 0) + 1
    assert done["status"]["replicas"] >= holding


def test_records_survive_the_reshard_and_new_ones_land_on_the_new_shards(kube, kinesis_for):
    stream = kube.get(V1A1, "Stream", NAME)
    kinesis = kinesis_for(stream["status"]["endpoint"])
    batch = records("after", 60)
    out = kinesis.put_records(StreamName=NAME, Records=batch)
    assert out["FailedRecordCount"] == 0
    assert len({r["ShardId"] for r in out["Records"]}) == 6
    got = read_all(kinesis, NAME)
    assert len(got) == 60 + 5 + 60
    assert {k for k, _ in got} >= {r["PartitionKey"] for r in batch}


def test_a_smaller_shard_count_keeps_the_pods_that_still_hold_data(kube, cluster, kinesis_for):
    kube.merge(V1A1, "Stream", NAME, {"spec": {"shardCount": 3}})
    # 3 shards at 2 per pod would fit on 2 pods, but every pod still holds closed shards
    # (readable until retention drops them): all 3 stay.
    done = kube.wait("events Ready with 3 shards, still on 3 pods", lambda: ready_with(kube, 3, 3), timeout=120)
    members = {m["ordinal"]: m for m in cluster_view(cluster)["members"]}
    assert members[2]["closedShards"] > 0
    assert kube.get("apps/v1", "StatefulSet", NAME)["spec"]["replicas"] == 3
    kinesis = kinesis_for(done["status"]["endpoint"])
    assert len(open_shards(kinesis, NAME)) == 3
    assert len(read_all(kinesis, NAME)) == 60 + 5 + 60


def test_deleting_a_multi_pod_stream_stops_its_pods_and_takes_its_secret(kube, cluster):
    procs = cluster.read(lambda: [p.proc for (ns, sts, _), p in cluster.kubelet.pods.items() if sts == NAME])
    assert len(procs) == 3
    kube.delete(V1A1, "Stream", NAME)
    kube.wait("events gone", lambda: kube.get(V1A1, "Stream", NAME) is None, timeout=60)
    kube.wait("its StatefulSet gone", lambda: kube.get("apps/v1", "StatefulSet", NAME) is None)
    kube.wait("its Secret gone", lambda: kube.get("v1", "Secret", f"{NAME}-cluster") is None)
    kube.wait("its processes stopped", lambda: all(p.returncode is not None for p in procs))
