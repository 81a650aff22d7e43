"""Firehose with boto3 and the AWS CLI: the API, and delivery into a real S3-compatible server
(Garage) and a real PostgreSQL."""

import base64
import decimal
import gzip
import io
import json
import time
import zipfile

import boto3
import botocore.config
import cramjam
import pytest
from botocore.exceptions import ClientError

from conftest import REGION, Server, error_code, error_message, make_client, unique
from garage import Garage

ROLE = "arn:aws:iam::000000000000:role/firehose"


def firehose_client(url):
    return boto3.client(
        "firehose",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy-secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def garage(tmp_path_factory):
    g = Garage(tmp_path_factory.mktemp("garage"))
    yield g
    g.stop()


GLUE_TABLE = {
    "Table": {
        "Name": "orders",
        "DatabaseName": "shop",
        "StorageDescriptor": {
            "Columns": [
                {"Name": "order_id", "Type": "bigint"},
                {"Name": "customer", "Type": "string"},
                {"Name": "total", "Type": "double"},
                {"Name": "paid", "Type": "boolean"},
                {"Name": "placed_at", "Type": "timestamp"},
                {"Name": "discount", "Type": "decimal(5,2)"},
                {"Name": "items", "Type": "array<struct<sku:string,qty:int>>"},
                {"Name": "labels", "Type": "map<string,string>"},
            ],
            "Location": "s3://landing/orders/",
        },
        "TableType": "EXTERNAL_TABLE",
    }
}


@pytest.fixture(scope="module")
def glue_catalog(tmp_path_factory):
    """A Glue catalog directory: shop/orders.json as `aws glue get-table` prints it."""
    root = tmp_path_factory.mktemp("glue")
    (root / "shop").mkdir()
    (root / "shop" / "orders.json").write_text(json.dumps(GLUE_TABLE))
    return root


@pytest.fixture(scope="module")
def fh_server(garage, glue_catalog, tmp_path_factory):
    s = Server(
        "--no-limits",
        "--glue-catalog",
        str(glue_catalog),
        "--delivery-retry-initial-ms",
        "200",
        "--delivery-retry-max-ms",
        "1000",
        *garage.server_args(),
        name="firehose",
        tmp_path=tmp_path_factory.mktemp("firehose"),
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def firehose(fh_server):
    return firehose_client(fh_server.url)


def s3_config(prefix, compression="UNCOMPRESSED", interval=0, **extra):
    return {
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::landing",
        "Prefix": prefix,
        "ErrorOutputPrefix": prefix.rstrip("/") + "-errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
        "CompressionFormat": compression,
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [{"Type": "AppendDelimiterToRecord"}],
        },
        **extra,
    }


def wait_objects(garage, prefix, predicate, timeout=30):
    deadline = time.time() + timeout
    while True:
        objs = garage.objects(prefix)
        if predicate(objs):
            return objs
        if time.time() > deadline:
            raise AssertionError(f"objects under {prefix} never satisfied the check: {list(objs)}")
        time.sleep(0.25)


def lines_of(objs, decode=lambda b: b):
    out = []
    for key in sorted(objs):
        out.extend(decode(objs[key]).decode().splitlines())
    return out


def put_batch(firehose, name, records):
    r = firehose.put_record_batch(
        DeliveryStreamName=name, Records=[{"Data": d.encode()} for d in records]
    )
    assert r["FailedPutCount"] == 0
    assert len(r["RequestResponses"]) == len(records)
    return r


def test_create_describe_list_and_delete_follow_firehose(firehose):
    name = unique("fh-api")
    arn = firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=s3_config(f"{name}/"),
        Tags=[{"Key": "team", "Value": "data"}],
    )["DeliveryStreamARN"]
    assert arn == f"arn:aws:firehose:{REGION}:000000000000:deliverystream/{name}"
    d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] == "ACTIVE"
    assert d["VersionId"] == "1"
    assert d["DeliveryStreamEncryptionConfiguration"]["Status"] == "DISABLED"
    dest = d["Destinations"][0]
    assert dest["DestinationId"] == "destinationId-000000000001"
    ext = dest["ExtendedS3DestinationDescription"]
    assert ext["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
    assert ext["CloudWatchLoggingOptions"] == {"Enabled": False}
    assert ext["S3BackupMode"] == "Disabled"
    assert dest["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::landing"
    assert name in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert firehose.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [
        {"Key": "team", "Value": "data"}
    ]
    firehose.delete_delivery_stream(DeliveryStreamName=name)
    with pytest.raises(ClientError) as e:
        firehose.describe_delivery_stream(DeliveryStreamName=name)
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == f"Firehose {name} under account 000000000000 not found."


def test_invalid_names_and_ranges_get_aws_validation_messages(firehose):
    with pytest.raises(ClientError) as e:
        firehose.create_delivery_stream(
            DeliveryStreamName="bad name!",
            ExtendedS3DestinationConfiguration={
                **s3_config("x/"),
                "BufferingHints": {"SizeInMBs": 129, "IntervalInSeconds": 300},
            },
        )
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "2 validation errors detected: Value 'bad name!' at 'deliveryStreamName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '129' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed "
        "to satisfy constraint: Member must have value less than or equal to 128"
    )


def test_put_record_on_a_stream_sourced_delivery_stream_is_refused(firehose, fh_server):
    kinesis = make_client(fh_server.url)
    stream = unique("fh-src")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    name = unique("fh-kin")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:000000000000:stream/{stream}",
            "RoleARN": ROLE,
        },
        ExtendedS3DestinationConfiguration=s3_config(f"{name}/"),
    )
    with pytest.raises(ClientError) as e:
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert error_code(e) == "InvalidArgumentException"
    src = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
        "Source"
    ]["KinesisStreamSourceDescription"]
    assert src["KinesisStreamARN"].endswith(f"stream/{stream}")


def test_direct_put_objects_land_in_garage_gzipped_under_the_evaluated_prefix(
    firehose, garage, fh_server
):
    name = unique("fh-gz")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config(
            f"{name}/dt=!{{timestamp:yyyy-MM-dd}}/", compression="GZIP"
        ),
    )
    records = [json.dumps({"n": i}) for i in range(250)]
    put_batch(firehose, name, records)
    objs = wait_objects(garage, f"{name}/", lambda o: len(lines_of(o, gzip.decompress)) >= 250)
    assert sorted(lines_of(objs, gzip.decompress)) == sorted(records)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for key in objs:
        folder, file = key.split("/")[1], key.split("/")[2]
        assert folder == f"dt={today}"
        assert file.startswith(f"{name}-1-") and file.endswith(".gz")
    metrics = fh_server.metrics_text()
    assert f'firehose_incoming_records_total{{delivery_stream="{name}"}} 250' in metrics
    assert (
        f'firehose_delivery_records_total{{delivery_stream="{name}",destination="S3"}} 250'
        in metrics
    )
    assert f'firehose_delivery_attempts_total{{delivery_stream="{name}",destination="S3",outcome="success"}}' in metrics


@pytest.mark.parametrize(
    "fmt,decode",
    [
        ("ZIP", lambda b: zipfile.ZipFile(io.BytesIO(b)).read(zipfile.ZipFile(io.BytesIO(b)).namelist()[0])),
        ("Snappy", lambda b: bytes(cramjam.snappy.decompress(b))),
        (
            "HADOOP_SNAPPY",
            lambda b: bytes(
                cramjam.snappy.decompress_raw(b[8 : 8 + int.from_bytes(b[4:8], "big")])
            ),
        ),
    ],
)
def test_zip_and_snappy_objects_decompress_to_the_records(firehose, garage, fmt, decode):
    name = unique(f"fh-{fmt.lower().replace('_', '-')}")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config(f"{name}/", compression=fmt, interval=1),
    )
    records = [f"line {i}" for i in range(40)]
    put_batch(firehose, name, records)
    objs = wait_objects(garage, f"{name}/", lambda o: len(lines_of(o, decode)) >= 40)
    assert sorted(lines_of(objs, decode)) == sorted(records)


def test_garage_down_then_back_loses_nothing(firehose, garage):
    name = unique("fh-outage")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_config(f"{name}/")
    )
    garage.stop()
    try:
        records = [f"during-outage-{i}" for i in range(30)]
        put_batch(firehose, name, records)
        time.sleep(2)  # several delivery attempts fail meanwhile
    finally:
        garage.start()
    objs = wait_objects(garage, f"{name}/", lambda o: len(lines_of(o)) >= 30, timeout=60)
    assert sorted(lines_of(objs)) == sorted(records)


def test_stream_to_delivery_stream_to_garage_pipeline_reads_every_record_back(
    firehose, fh_server, garage
):
    kinesis = make_client(fh_server.url)
    stream = unique("fh-pipe")
    kinesis.create_stream(StreamName=stream, ShardCount=3)
    name = unique("fh-pipe-ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:000000000000:stream/{stream}",
            "RoleARN": ROLE,
        },
        ExtendedS3DestinationConfiguration=s3_config(f"{name}/", compression="GZIP", interval=1),
    )
    sent = []
    for batch in range(4):
        entries = [
            {"Data": json.dumps({"b": batch, "i": i}).encode(), "PartitionKey": f"k{i}"}
            for i in range(100)
        ]
        assert kinesis.put_records(StreamName=stream, Records=entries)["FailedRecordCount"] == 0
        sent.extend(e["Data"].decode() for e in entries)
    objs = wait_objects(
        garage, f"{name}/", lambda o: len(lines_of(o, gzip.decompress)) >= len(sent), timeout=60
    )
    got = lines_of(objs, gzip.decompress)
    assert sorted(got) == sorted(sent)


@pytest.fixture(scope="module")
def postgres():
    from postgres import Postgres

    pg = Postgres()
    yield pg
    pg.stop()


def test_redshift_destination_stages_in_s3_and_copies_json_into_postgresql(
    firehose, garage, postgres
):
    from postgres import PASSWORD, USER

    name = unique("fh-pg")
    table = name.replace("-", "_")
    postgres.psql(f"CREATE TABLE {table} (id integer, name text, amount numeric)")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        RedshiftDestinationConfiguration={
            "RoleARN": ROLE,
            "ClusterJDBCURL": postgres.jdbc_url,
            "CopyCommand": {
                "DataTableName": table,
                "DataTableColumns": "id,name,amount",
                "CopyOptions": "JSON 'auto'",
            },
            "Username": USER,
            "Password": PASSWORD,
            "S3Configuration": {
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::landing",
                "Prefix": f"{name}/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
        },
    )
    d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    described = d["Destinations"][0]["RedshiftDestinationDescription"]
    assert "Password" not in described
    assert described["CopyCommand"]["DataTableName"] == table
    records = [
        json.dumps({"id": i, "name": f"item \"{i}\", with comma", "amount": i * 1.5}) for i in range(60)
    ]
    put_batch(firehose, name, records)
    deadline = time.time() + 30
    while postgres.query(f"SELECT count(*) FROM {table}")[0][0] != "60":
        assert time.time() < deadline, postgres.query(f"SELECT count(*) FROM {table}")
        time.sleep(0.25)
    rows = postgres.query(f"SELECT id, name, amount FROM {table} ORDER BY id")
    assert rows[7] == ["7", 'item "7", with comma', "10.5"]
    # Firehose stages every batch in the S3 configuration before COPY.
    staged = b"".join(garage.objects(f"{name}/").values()).decode()
    assert len(staged) == sum(len(r) for r in records)
    assert all(r in staged for r in records)


def test_aws_cli_creates_a_delivery_stream_and_its_records_land_in_garage(
    fh_server, garage, tmp_path
):
    import os
    import pathlib
    import shutil
    import subprocess
    import sys

    exe = pathlib.Path(sys.executable).parent / "aws"
    exe = str(exe) if exe.exists() else shutil.which("aws")
    assert exe, "the AWS CLI is installed by tests/run.sh"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "dummy-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }

    def aws(*args):
        p = subprocess.run(
            [exe, "--endpoint-url", fh_server.url, "--output", "json", "firehose", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else None

    name = unique("fh-cli")
    config = json.dumps(s3_config(f"{name}/"))
    arn = aws(
        "create-delivery-stream",
        "--delivery-stream-name", name,
        "--extended-s3-destination-configuration", config,
    )["DeliveryStreamARN"]
    assert arn.endswith(f"deliverystream/{name}")
    assert name in aws("list-delivery-streams", "--limit", "10000")["DeliveryStreamNames"]
    # AWS CLI v1 sends a blob as given (v2 would base64-decode it first).
    record = json.dumps({"Data": '{"via":"cli"}'})
    assert aws("put-record", "--delivery-stream-name", name, "--record", record)["RecordId"]
    objs = wait_objects(garage, f"{name}/", lambda o: len(lines_of(o)) >= 1)
    assert lines_of(objs) == ['{"via":"cli"}']


def test_json_records_land_in_garage_as_parquet_that_pyarrow_reads(firehose, garage):
    import pyarrow.parquet as pq

    name = unique("parquet")
    prefix = f"{name}/"
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::landing",
            "Prefix": prefix,
            "ErrorOutputPrefix": f"{name}-errors/!{{firehose:error-output-type}}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "SchemaConfiguration": {
                    "RoleARN": ROLE,
                    "DatabaseName": "shop",
                    "TableName": "orders",
                },
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {
                    "Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}
                },
            },
        },
    )
    records = [
        {"order_id": 1, "customer": "ada", "total": 12.5, "paid": True, "placed_at": "2024-05-01T10:00:00Z", "discount": "1.5",
         "items": [{"sku": "pen", "qty": 2}, {"sku": "ink"}], "labels": {"channel": "web"}},
        {"order_id": 2, "customer": "bob", "total": 3.0, "paid": False, "placed_at": 1714557600},
        {"order_id": 3, "customer": "cy"},
    ]
    put_batch(firehose, name, [json.dumps(r) for r in records] + ['"just a string"'])
    objs = wait_objects(garage, prefix, lambda o: len(o) >= 1)
    ((key, body),) = objs.items()
    assert key.endswith(".parquet")
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == [
        "order_id", "customer", "total", "paid", "placed_at", "discount", "items", "labels"
    ]
    assert pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression == "GZIP"
    rows = table.to_pylist()
    assert [r["order_id"] for r in rows] == [1, 2, 3]
    assert [r["customer"] for r in rows] == ["ada", "bob", "cy"]
    assert rows[0]["total"] == 12.5 and rows[0]["paid"] is True
    assert rows[0]["placed_at"].isoformat().startswith("2024-05-01T10:00:00")
    assert rows[1]["placed_at"].isoformat().startswith("2024-05-01T10:00:00")
    assert rows[2]["total"] is None and rows[2]["placed_at"] is None
    assert rows[0]["discount"] == decimal.Decimal("1.50") and rows[1]["discount"] is None
    assert rows[0]["items"] == [{"sku": "pen", "qty": 2}, {"sku": "ink", "qty": None}]
    assert rows[0]["labels"] == [("channel", "web")]
    assert rows[1]["items"] is None and rows[1]["labels"] is None
    errors = wait_objects(garage, f"{name}-errors/format-conversion-failed/", lambda o: len(o) >= 1)
    (line,) = lines_of(errors)
    err = json.loads(line)
    assert err["lastErrorCode"] == "DataFormatConversion.MalformedData"
    assert err["dataCatalogTable"]["tableName"] == "orders"
    assert base64.b64decode(err["rawData"]) == b'"just a string"'


def test_format_conversion_needs_a_known_glue_table(firehose):
    with pytest.raises(ClientError) as e:
        firehose.create_delivery_stream(
            DeliveryStreamName=unique("parquet"),
            ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::landing",
                "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 60},
                "DataFormatConversionConfiguration": {
                    "SchemaConfiguration": {"DatabaseName": "shop", "TableName": "refunds"},
                    "InputFormatConfiguration": {"Deserializer": {"HiveJsonSerDe": {}}},
                    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
                },
            },
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == "Table refunds in database shop not found."


def test_control_plane_calls_over_five_per_second_are_throttled_and_boto3_retries_them(limited_server):
    from concurrent.futures import ThreadPoolExecutor

    def burst(client, n):
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [pool.submit(client.list_delivery_streams) for _ in range(n)]
        ok, errors = 0, []
        for f in futures:
            try:
                f.result()
                ok += 1
            except ClientError as e:
                errors.append(e)
        return ok, errors

    no_retries = firehose_client(limited_server.url)
    start = time.monotonic()
    ok, errors = burst(no_retries, 30)
    elapsed = time.monotonic() - start
    # 5 calls at once, then 5 per second while the burst lasts.
    assert 5 <= ok <= 5 + 5 * elapsed + 1
    assert len(errors) == 30 - ok
    for e in errors:
        assert e.response["Error"]["Code"] == "ThrottlingException"
        assert e.response["Error"]["Message"] == "Rate exceeded"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    time.sleep(1.1)
    # boto3 treats ThrottlingException as a throttle and retries it with backoff.
    retrying = boto3.client(
        "firehose",
        endpoint_url=limited_server.url,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy-secret",
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 10}),
    )
    ok, errors = burst(retrying, 12)
    assert (ok, errors) == (12, [])
