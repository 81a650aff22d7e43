"""DeliveryStream and AnalyticsApp end to end, on this machine: the operator runs each as a
Deployment whose pod (a real `tributary serve`, started by the fake kubelet) reads and writes
its Streams through `--stream-endpoint`, with records written and read by boto3.

The scenarios run in file order after test_operator_e2e.py, on the same fake cluster, with their
own Streams (`wl-*`), whose Service addresses conftest reserves before the operator starts.
"""

import base64
import copy
import json
import subprocess
import sys
import time

import boto3
import botocore.config
import pytest

from conftest import NAMESPACE, REPO

sys.path.insert(0, str(REPO / "tests" / "python"))
import garage as garage_mod  # noqa: E402  (tests/python/garage.py: a one-node Garage)

V1A1 = "tributary.dev/v1alpha1"

pytestmark = pytest.mark.usefixtures("operator")


def supports_stream_endpoint(binary):
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    return "--stream-endpoint" in out.stdout


@pytest.fixture(scope="module")
def remote_streams(binaries):
    if not supports_stream_endpoint(binaries["tributary"]):
        pytest.skip("this data plane does not accept --stream-endpoint yet (the remote-streams work); "
                    "the scenarios that read or write Streams from a Deployment need it")


def conditions(obj):
    return {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", [])}


class NotYet(str):
    """What a wait saw instead of the state it waits for: false, and quoted in the timeout message."""

    def __bool__(self):
        return False


def ready(kube, kind, name, reason):
    obj = kube.get(V1A1, kind, name)
    c = conditions(obj).get("Ready")
    if c and (c["status"], c["reason"]) == ("True", reason) and obj["status"]["observedGeneration"] == obj["metadata"]["generation"]:
        return obj
    if obj is None:
        return NotYet(f"{kind} {name} not found")
    seen = {t: (c.get("status"), c.get("reason"), c.get("message")) for t, c in conditions(obj).items()}
    return NotYet(f"{kind} {name}: generation {obj['metadata'].get('generation')}, "
                  f"observed {obj.get('status', {}).get('observedGeneration')}, conditions {seen}")


def stream(name, shards=1):
    return {"apiVersion": V1A1, "kind": "Stream", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"shardCount": shards}}


def apply_streams(kube, *names):
    for n in names:
        kube.apply(stream(n))
    return {n: kube.wait(f"Stream {n} Ready", lambda n=n: ready(kube, "Stream", n, "Active"), timeout=60) for n in names}


def deployment(kube, name):
    return kube.get("apps/v1", "Deployment", name)


def container(dep):
    return dep["spec"]["template"]["spec"]["containers"][0]


DELIVERY = {
    "apiVersion": V1A1,
    "kind": "DeliveryStream",
    "metadata": {"name": "wl-archive", "namespace": NAMESPACE},
    "spec": {
        "deliveryStreamType": "KinesisStreamAsSource",
        "kinesisStreamSourceConfiguration": {"streamRef": {"name": "wl-orders"}},
        "extendedS3DestinationConfiguration": {
            "bucketARN": "arn:aws:s3:::archive",
            "prefix": "orders/",
            "bufferingHints": {"sizeInMBs": 1, "intervalInSeconds": 1},
            "credentialsSecretRef": {"name": "wl-store-keys"},
        },
    },
}

SQL = """CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(4), PRICE DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 10;
"""


def analytics_app(name, code):
    return {
        "apiVersion": V1A1,
        "kind": "AnalyticsApp",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "applicationCode": code,
            "inputs": [{
                "namePrefix": "SOURCE_SQL_STREAM",
                "kinesisStreamsInput": {"resourceRef": {"name": "wl-ticks"}},
                "inputSchema": {
                    "recordFormat": {"recordFormatType": "JSON",
                                     "mappingParameters": {"jsonMappingParameters": {"recordRowPath": "$"}}},
                    "recordColumns": [
                        {"name": "TICKER", "mapping": "$.ticker", "sqlType": "VARCHAR(4)"},
                        {"name": "PRICE", "mapping": "$.price", "sqlType": "DOUBLE"},
                    ],
                },
                "inputStartingPosition": "TRIM_HORIZON",
            }],
            "outputs": [{
                "name": "DESTINATION_SQL_STREAM",
                "kinesisStreamsOutput": {"resourceRef": {"name": "wl-ticks-out"}},
                "destinationSchema": {"recordFormatType": "JSON"},
            }],
        },
    }


def test_a_delivery_stream_with_a_missing_secret_is_stalled_and_deploys_nothing(kube):
    apply_streams(kube, "wl-orders")
    kube.apply(DELIVERY)

    def stalled():
        c = conditions(kube.get(V1A1, "DeliveryStream", "wl-archive")).get("Stalled")
        return c if c and c["status"] == "True" else None

    c = kube.wait("DeliveryStream Stalled", stalled)
    assert c["reason"] == "SecretNotFound"
    assert c["message"] == "Secret wl-store-keys does not exist (it must hold the key AWS_ACCESS_KEY_ID)"
    assert deployment(kube, "wl-archive-firehose") is None


def test_once_the_secret_exists_the_delivery_stream_runs_with_credentials_from_it(kube, cluster):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wl-store-keys", "namespace": NAMESPACE},
              "data": {"AWS_ACCESS_KEY_ID": base64.b64encode(b"GKstore").decode(),
                       "AWS_SECRET_ACCESS_KEY": base64.b64encode(b"s3cr3t").decode()}}
    kube.request("POST", kube.path("v1", "Secret"), secret)
    dep = kube.wait("the delivery stream's Deployment", lambda: deployment(kube, "wl-archive-firehose"))
    c = container(dep)
    args = c["args"]
    assert args[args.index("--stream-endpoint") + 1] == "wl-orders=http://wl-orders.default.svc:4567"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs["TRIBUTARY_S3_ACCESS_KEY_ID"] == {"name": "wl-store-keys", "key": "AWS_ACCESS_KEY_ID", "optional": False}
    # The values reach the process, and never the ConfigMap.
    pod = kube.wait("the delivery stream's pod", lambda: cluster.read(lambda: cluster.kubelet.pod(NAMESPACE, "wl-archive-firehose-0")))
    assert pod.env["TRIBUTARY_S3_ACCESS_KEY_ID"] == "GKstore"
    assert pod.env["TRIBUTARY_S3_SECRET_ACCESS_KEY"] == "s3cr3t"
    cm = kube.get("v1", "ConfigMap", "wl-archive-firehose-config")
    text = cm["data"]["delivery-stream.yaml"]
    assert "wl-store-keys" in text and "s3cr3t" not in text and "GKstore" not in text
    claim = kube.get("v1", "PersistentVolumeClaim", "wl-archive-firehose-data")
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "DeliveryStream"


def test_records_written_to_the_stream_arrive_at_the_destination(kube, cluster, kinesis_for, remote_streams):
    ds = kube.wait("DeliveryStream Ready", lambda: ready(kube, "DeliveryStream", "wl-archive", "Active"), timeout=60)
    assert ds["status"]["deliveryStreamArn"].endswith(":deliverystream/wl-archive")
    assert ds["status"]["deliveryStreamStatus"] == "ACTIVE"
    src = kube.get(V1A1, "Stream", "wl-orders")
    kinesis = kinesis_for(src["status"]["endpoint"])
    sent = [f"order-{i}" for i in range(20)]
    for i, data in enumerate(sent):
        kinesis.put_record(StreamName="wl-orders", Data=data.encode() + b"\n", PartitionKey=str(i))
    # The pod's default object store is a directory in its data volume: bucket/key files.
    bucket = cluster.kubelet.root / "claims" / NAMESPACE / "wl-archive-firehose-data" / "data" / "s3" / "archive"

    def delivered():
        text = "".join(p.read_text() for p in sorted(bucket.rglob("*")) if p.is_file()) if bucket.exists() else ""
        got = [line for line in text.splitlines() if line]
        return got if sorted(got) == sorted(sent) else None

    got = kube.wait("the records in the bucket", delivered, timeout=60)
    assert len(got) == 20
    assert all(str(p.relative_to(bucket)).startswith("orders/") for p in bucket.rglob("*") if p.is_file())


def bucket_lines(bucket, prefix):
    files = sorted(p for p in bucket.rglob("*") if p.is_file() and str(p.relative_to(bucket)).startswith(prefix)) if bucket.exists() else []
    return [line for p in files for line in p.read_text().splitlines() if line]


def test_a_spec_change_is_applied_to_the_running_delivery_stream(kube, cluster, kinesis_for, remote_streams):
    """Changing the destination of an existing DeliveryStream restarts its pod, which applies the
    change as UpdateDestination would: the version id advances and new records use it."""
    changed = copy.deepcopy(DELIVERY)
    changed["spec"]["extendedS3DestinationConfiguration"]["prefix"] = "orders-v2/"
    kube.apply(changed)

    def updated():
        obj = ready(kube, "DeliveryStream", "wl-archive", "Active")
        return obj if obj and obj["status"].get("versionId") == "2" else None

    kube.wait("versionId 2", updated, timeout=60)
    src = kube.get(V1A1, "Stream", "wl-orders")
    kinesis = kinesis_for(src["status"]["endpoint"])
    sent = [f"late-order-{i}" for i in range(5)]
    for i, data in enumerate(sent):
        kinesis.put_record(StreamName="wl-orders", Data=data.encode() + b"\n", PartitionKey=str(i))
    bucket = cluster.kubelet.root / "claims" / NAMESPACE / "wl-archive-firehose-data" / "data" / "s3" / "archive"
    kube.wait("the new records under the new prefix",
              lambda: sorted(bucket_lines(bucket, "orders-v2/")) == sorted(sent) or None, timeout=60)


def test_a_stream_whose_stream_name_differs_is_referenced_by_its_resource_name(kube, cluster, kinesis_for, remote_streams):
    named = stream("wl-named")
    named["spec"]["streamName"] = "wl-named-stream"
    kube.apply(named)
    src = kube.wait("Stream wl-named Ready", lambda: ready(kube, "Stream", "wl-named", "Active"), timeout=60)
    kube.apply({
        "apiVersion": V1A1,
        "kind": "DeliveryStream",
        "metadata": {"name": "wl-named-archive", "namespace": NAMESPACE},
        "spec": {
            "deliveryStreamType": "KinesisStreamAsSource",
            "kinesisStreamSourceConfiguration": {"streamRef": {"name": "wl-named"}},
            "extendedS3DestinationConfiguration": {
                "bucketARN": "arn:aws:s3:::named",
                "bufferingHints": {"sizeInMBs": 1, "intervalInSeconds": 1},
            },
        },
    })
    kube.wait("DeliveryStream Ready", lambda: ready(kube, "DeliveryStream", "wl-named-archive", "Active"), timeout=60)
    args = container(deployment(kube, "wl-named-archive-firehose"))["args"]
    assert args[args.index("--stream-endpoint") + 1] == "wl-named-stream=http://wl-named.default.svc:4567"
    text = kube.get("v1", "ConfigMap", "wl-named-archive-firehose-config")["data"]["delivery-stream.yaml"]
    assert "name: wl-named-stream" in text
    kinesis = kinesis_for(src["status"]["endpoint"])
    sent = [f"named-{i}" for i in range(5)]
    for i, data in enumerate(sent):
        kinesis.put_record(StreamName="wl-named-stream", Data=data.encode() + b"\n", PartitionKey=str(i))
    bucket = cluster.kubelet.root / "claims" / NAMESPACE / "wl-named-archive-firehose-data" / "data" / "s3" / "named"
    kube.wait("the records in the bucket", lambda: sorted(bucket_lines(bucket, "")) == sorted(sent) or None, timeout=60)
    kube.delete(V1A1, "DeliveryStream", "wl-named-archive")
    kube.wait("the DeliveryStream gone", lambda: kube.get(V1A1, "DeliveryStream", "wl-named-archive") is None, timeout=60)
    kube.delete(V1A1, "Stream", "wl-named")
    kube.wait("the Stream gone", lambda: kube.get(V1A1, "Stream", "wl-named") is None, timeout=60)


@pytest.fixture(scope="module")
def postgres():
    sys.path.insert(0, str(REPO / "tests" / "python"))
    import postgres as pg_mod
    try:
        pg_mod.pg_bin("initdb")
    except RuntimeError as e:
        pytest.skip(str(e))
    pg = pg_mod.Postgres()
    yield pg
    pg.stop()


def test_a_redshift_destination_loads_postgresql_with_the_password_from_a_secret(kube, cluster, postgres):
    """A Redshift (PostgreSQL) destination: the password reaches the pod through secretKeyRef,
    never the ConfigMap; DirectPut records are staged on the claim and copied into the table."""
    from postgres import PASSWORD, USER
    postgres.psql("CREATE TABLE wl_loads (id integer, name text)")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wl-pg", "namespace": NAMESPACE},
              "stringData": {"password": PASSWORD}}
    kube.request("POST", kube.path("v1", "Secret"), secret)
    kube.apply({
        "apiVersion": V1A1,
        "kind": "DeliveryStream",
        "metadata": {"name": "wl-loads", "namespace": NAMESPACE},
        "spec": {
            "deliveryStreamType": "DirectPut",
            "redshiftDestinationConfiguration": {
                "clusterJDBCURL": postgres.jdbc_url,
                "copyCommand": {"dataTableName": "wl_loads", "dataTableColumns": "id,name", "copyOptions": "JSON 'auto'"},
                "username": USER,
                "passwordSecretRef": {"name": "wl-pg"},
                "s3Configuration": {"bucketARN": "arn:aws:s3:::staging",
                                    "bufferingHints": {"sizeInMBs": 1, "intervalInSeconds": 1}},
            },
        },
    })
    ds = kube.wait("DeliveryStream Ready", lambda: ready(kube, "DeliveryStream", "wl-loads", "Active"), timeout=60)
    c = container(deployment(kube, "wl-loads-firehose"))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs["TRIBUTARY_REDSHIFT_PASSWORD"] == {"name": "wl-pg", "key": "password", "optional": False}
    text = kube.get("v1", "ConfigMap", "wl-loads-firehose-config")["data"]["delivery-stream.yaml"]
    assert "wl-pg" in text and PASSWORD not in text
    firehose = boto3.client(
        "firehose", endpoint_url=cluster.network.resolve(ds["status"]["endpoint"]), region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )
    described = firehose.describe_delivery_stream(DeliveryStreamName="wl-loads")["DeliveryStreamDescription"]
    assert PASSWORD not in json.dumps(described, default=str)
    rows = [{"id": i, "name": f"row-{i}"} for i in range(10)]
    out = firehose.put_record_batch(DeliveryStreamName="wl-loads", Records=[{"Data": json.dumps(r).encode()} for r in rows])
    assert out["FailedPutCount"] == 0
    kube.wait("the rows in PostgreSQL", lambda: postgres.query("SELECT count(*) FROM wl_loads")[0][0] == "10" or None, timeout=60)
    assert postgres.query("SELECT name FROM wl_loads WHERE id = 3") == [["row-3"]]
    kube.delete(V1A1, "DeliveryStream", "wl-loads")
    kube.wait("the DeliveryStream gone", lambda: kube.get(V1A1, "DeliveryStream", "wl-loads") is None, timeout=60)


def test_parquet_conversion_reads_its_glue_table_from_a_configmap(kube, cluster):
    """Record format conversion: the Glue table is a ConfigMap key, mounted as the pod's
    --glue-catalog; JSON records put with boto3 land as Parquet objects."""
    table = {"Table": {"Name": "trades", "StorageDescriptor": {"Columns": [
        {"Name": "ticker", "Type": "string"}, {"Name": "price", "Type": "double"}]}}}
    kube.request("POST", kube.path("v1", "ConfigMap"), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wl-glue", "namespace": NAMESPACE},
        "data": {"markets.trades.json": json.dumps(table)}})
    kube.apply({
        "apiVersion": V1A1,
        "kind": "DeliveryStream",
        "metadata": {"name": "wl-trades", "namespace": NAMESPACE},
        "spec": {
            "extendedS3DestinationConfiguration": {
                "bucketARN": "arn:aws:s3:::lake",
                "prefix": "trades/",
                "bufferingHints": {"sizeInMBs": 64, "intervalInSeconds": 1},
                "dataFormatConversionConfiguration": {
                    "schemaConfiguration": {"databaseName": "markets", "tableName": "trades",
                                            "glueCatalogConfigMapRef": {"name": "wl-glue"}},
                    "inputFormatConfiguration": {"deserializer": {"openXJsonSerDe": {}}},
                    "outputFormatConfiguration": {"serializer": {"parquetSerDe": {"compression": "GZIP"}}},
                },
            },
        },
    })
    ds = kube.wait("DeliveryStream Ready", lambda: ready(kube, "DeliveryStream", "wl-trades", "Active"), timeout=60)
    spec = deployment(kube, "wl-trades-firehose")["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert args[args.index("--glue-catalog") + 1] == "/etc/tributary/glue-catalog"
    vol = next(v for v in spec["volumes"] if v["name"] == "glue-catalog")
    assert vol["configMap"]["items"] == [{"key": "markets.trades.json", "path": "markets/trades.json"}]
    firehose = boto3.client(
        "firehose", endpoint_url=cluster.network.resolve(ds["status"]["endpoint"]), region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )
    out = firehose.put_record_batch(DeliveryStreamName="wl-trades", Records=[
        {"Data": json.dumps({"ticker": t, "price": p}).encode()} for t, p in [("AMZN", 12.5), ("MSFT", 30.0)]])
    assert out["FailedPutCount"] == 0
    bucket = cluster.kubelet.root / "claims" / NAMESPACE / "wl-trades-firehose-data" / "data" / "s3" / "lake"

    def parquet():
        files = [p for p in bucket.rglob("*.parquet")] if bucket.exists() else []
        return files or None

    files = kube.wait("a Parquet object", parquet, timeout=60)
    body = files[0].read_bytes()
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    assert str(files[0].relative_to(bucket)).startswith("trades/")
    kube.delete(V1A1, "DeliveryStream", "wl-trades")
    kube.wait("the DeliveryStream gone", lambda: kube.get(V1A1, "DeliveryStream", "wl-trades") is None, timeout=60)


@pytest.fixture(scope="module")
def garage(workdir):
    """A Garage S3 server whose region is the data plane's default S3 region (us-east-1)."""
    try:
        garage_mod.garage_binary()
    except RuntimeError as e:
        pytest.skip(str(e))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(garage_mod, "REGION", "us-east-1")
        g = garage_mod.Garage(workdir / "garage", bucket="landing")
        yield g
        g.stop()


def test_a_direct_put_delivery_stream_delivers_to_s3_with_credentials_from_a_secret(kube, cluster, garage):
    """DirectPut: producers call PutRecordBatch at the delivery stream's Service; the buffer is on
    the claim; objects go to an S3 store (Garage) signed with the keys of the referenced Secret."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wl-garage-keys", "namespace": NAMESPACE},
              "stringData": {"AWS_ACCESS_KEY_ID": garage.key_id, "AWS_SECRET_ACCESS_KEY": garage.secret}}
    kube.request("POST", kube.path("v1", "Secret"), secret)
    kube.apply({
        "apiVersion": V1A1,
        "kind": "DeliveryStream",
        "metadata": {"name": "wl-landing", "namespace": NAMESPACE},
        "spec": {
            "deliveryStreamType": "DirectPut",
            "extendedS3DestinationConfiguration": {
                "bucketARN": "arn:aws:s3:::landing",
                "prefix": "events/",
                "bufferingHints": {"sizeInMBs": 1, "intervalInSeconds": 1},
                "endpointURL": garage.url,
                "credentialsSecretRef": {"name": "wl-garage-keys"},
            },
        },
    })
    ds = kube.wait("DeliveryStream Ready", lambda: ready(kube, "DeliveryStream", "wl-landing", "Active"), timeout=60)
    assert ds["status"]["endpoint"] == "http://wl-landing-firehose.default.svc:4567"
    dep = deployment(kube, "wl-landing-firehose")
    assert "--stream-endpoint" not in container(dep)["args"]
    assert any(v["name"] == "data" and v["persistentVolumeClaim"]["claimName"] == "wl-landing-firehose-data"
               for v in dep["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v)
    firehose = boto3.client(
        "firehose", endpoint_url=cluster.network.resolve(ds["status"]["endpoint"]), region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )
    sent = [json.dumps({"event": i}) for i in range(10)]
    out = firehose.put_record_batch(DeliveryStreamName="wl-landing", Records=[{"Data": (d + "\n").encode()} for d in sent])
    assert out["FailedPutCount"] == 0

    def delivered():
        got = [line for body in garage.objects("events/").values() for line in body.decode().splitlines() if line]
        return got if sorted(got) == sorted(sent) else None

    kube.wait("the records in Garage", delivered, timeout=60)
    kube.delete(V1A1, "DeliveryStream", "wl-landing")
    kube.wait("the DeliveryStream gone", lambda: kube.get(V1A1, "DeliveryStream", "wl-landing") is None, timeout=60)


def test_bad_sql_is_query_valid_false_with_its_position(kube):
    kube.apply(analytics_app("wl-bad-sql", SQL.replace("WHERE PRICE", "WHERE PRIZE")))

    def invalid():
        c = conditions(kube.get(V1A1, "AnalyticsApp", "wl-bad-sql")).get("QueryValid")
        return c if c and c["status"] == "False" else None

    c = kube.wait("QueryValid=False", invalid)
    assert c["reason"] == "UnknownObject"
    assert c["message"].startswith("From line 3, column "), c["message"]
    assert "PRIZE" in c["message"]
    obj = kube.get(V1A1, "AnalyticsApp", "wl-bad-sql")
    assert conditions(obj)["Stalled"]["status"] == "True"
    assert conditions(obj)["Ready"]["reason"] == "InvalidQuery"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert deployment(kube, "wl-bad-sql-analytics") is None
    # Fixing the code clears the condition (the app then waits for its Streams).
    kube.apply(analytics_app("wl-bad-sql", SQL))
    kube.wait("QueryValid=True", lambda: (conditions(kube.get(V1A1, "AnalyticsApp", "wl-bad-sql")).get("QueryValid") or {}).get("status") == "True")
    kube.delete(V1A1, "AnalyticsApp", "wl-bad-sql")
    kube.wait("the AnalyticsApp gone", lambda: kube.get(V1A1, "AnalyticsApp", "wl-bad-sql") is None)


def test_an_analytics_app_reads_one_stream_and_writes_rows_to_another(kube, kinesis_for, remote_streams):
    streams = apply_streams(kube, "wl-ticks", "wl-ticks-out")
    kube.apply(analytics_app("wl-tickers", SQL))
    app = kube.wait("AnalyticsApp Running", lambda: ready(kube, "AnalyticsApp", "wl-tickers", "Running"), timeout=60)
    assert app["status"]["applicationStatus"] == "RUNNING"
    assert conditions(app)["QueryValid"]["status"] == "True"
    args = container(deployment(kube, "wl-tickers-analytics"))["args"]
    assert "wl-ticks=http://wl-ticks.default.svc:4567" in args
    assert "wl-ticks-out=http://wl-ticks-out.default.svc:4567" in args

    source = kinesis_for(streams["wl-ticks"]["status"]["endpoint"])
    for ticker, price in [("AMZN", 5.0), ("MSFT", 25.5), ("AAPL", 12.0), ("TSLA", 3.0)]:
        source.put_record(StreamName="wl-ticks", Data=json.dumps({"ticker": ticker, "price": price}).encode(), PartitionKey=ticker)
    out = kinesis_for(streams["wl-ticks-out"]["status"]["endpoint"])
    shard = out.list_shards(StreamName="wl-ticks-out")["Shards"][0]["ShardId"]
    it = out.get_shard_iterator(StreamName="wl-ticks-out", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    rows = []
    deadline = time.monotonic() + 60
    while len(rows) < 2 and time.monotonic() < deadline:
        page = out.get_records(ShardIterator=it)
        rows += [json.loads(r["Data"]) for r in page["Records"]]
        it = page["NextShardIterator"]
        time.sleep(0.5)
    assert sorted((r["TICKER"], r["PRICE"]) for r in rows) == [("AAPL", 12.0), ("MSFT", 25.5)]


def test_deleting_the_workloads_removes_their_deployments_and_the_claim(kube, cluster):
    for kind, name in [("AnalyticsApp", "wl-tickers"), ("DeliveryStream", "wl-archive")]:
        if kube.get(V1A1, kind, name):
            kube.delete(V1A1, kind, name)
            kube.wait(f"{kind} {name} gone", lambda kind=kind, name=name: kube.get(V1A1, kind, name) is None, timeout=60)
    for dep in ["wl-tickers-analytics", "wl-archive-firehose"]:
        kube.wait(f"Deployment {dep} collected", lambda dep=dep: deployment(kube, dep) is None)
    kube.wait("the claim collected", lambda: kube.get("v1", "PersistentVolumeClaim", "wl-archive-firehose-data") is None)
    kube.wait("the claim's volume deleted", lambda: not (cluster.kubelet.root / "claims" / NAMESPACE / "wl-archive-firehose-data").exists())
    kube.wait("the pods stopped", lambda: cluster.read(lambda: cluster.kubelet.pod(NAMESPACE, "wl-archive-firehose-0")) is None)
