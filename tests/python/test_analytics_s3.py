"""Kinesis Data Analytics with boto3 and a real S3-compatible server (Garage): reference data
uploaded to S3 is discovered, joined and reloaded on UpdateApplication; an application's output
goes through a Firehose delivery stream into S3."""

import json
import time

import boto3
import botocore.config
import pytest

from conftest import REGION, Server, create_stream, make_client, read_all, unique
from garage import Garage

ROLE = "arn:aws:iam::000000000000:role/kda"

CODE = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Company" VARCHAR(20), price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker_symbol, "c"."Company", price
  FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" AS "c"
  ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";
"""


@pytest.fixture(scope="module")
def garage(tmp_path_factory):
    g = Garage(tmp_path_factory.mktemp("garage"), bucket="reference")
    yield g
    g.stop()


@pytest.fixture(scope="module")
def kda_server(garage, tmp_path_factory):
    s = Server(
        "--no-limits",
        *garage.server_args(),
        name="analytics",
        tmp_path=tmp_path_factory.mktemp("analytics"),
    )
    yield s
    s.stop()


def analytics_client(url):
    return boto3.client(
        "kinesisanalytics",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy-secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def arn(stream):
    return f"arn:aws:kinesis:{REGION}:000000000000:stream/{stream}"


def column(name, ty):
    return {"Name": name, "SqlType": ty, "Mapping": f"$.{name}"}


def wait_records(kinesis, name, n, timeout=20):
    deadline = time.time() + timeout
    while True:
        got = read_all(kinesis, name)
        if len(got) >= n or time.time() > deadline:
            return [json.loads(r["Data"]) for r in got]
        time.sleep(0.2)


def test_reference_data_from_s3_enriches_rows_and_reloads_on_update(kda_server, garage):
    kinesis = make_client(kda_server.url)
    kda = analytics_client(kda_server.url)
    s3 = garage.s3()
    s3.put_object(Bucket="reference", Key="TickerReference.csv", Body=b"AMZN,Amazon\nTGT,Target\n")
    # DiscoverInputSchema reads the object too.
    found = kda.discover_input_schema(
        RoleARN=ROLE,
        S3Configuration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::reference",
            "FileKey": "TickerReference.csv",
        },
    )
    assert found["InputSchema"]["RecordFormat"]["RecordFormatType"] == "CSV"
    assert len(found["InputSchema"]["RecordColumns"]) == 2
    assert found["ParsedInputRecords"] == [["AMZN", "Amazon"], ["TGT", "Target"]]
    assert found["RawInputRecords"] == ["AMZN,Amazon", "TGT,Target"]
    with pytest.raises(kda.exceptions.ResourceNotFoundException) as missing:
        kda.discover_input_schema(
            RoleARN=ROLE,
            S3Configuration={
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::reference",
                "FileKey": "nope.csv",
            },
        )
    assert "s3://reference/nope.csv" in str(missing.value)
    src, dst, app = unique("in"), unique("out"), unique("enrich")
    create_stream(kinesis, src)
    create_stream(kinesis, dst)
    kda.create_application(
        ApplicationName=app,
        Inputs=[
            {
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisStreamsInput": {"ResourceARN": arn(src), "RoleARN": ROLE},
                "InputSchema": {
                    "RecordFormat": {
                        "RecordFormatType": "JSON",
                        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}},
                    },
                    "RecordEncoding": "UTF-8",
                    "RecordColumns": [
                        column("TICKER_SYMBOL", "VARCHAR(4)"),
                        column("PRICE", "DOUBLE"),
                    ],
                },
            }
        ],
        Outputs=[
            {
                "Name": "DESTINATION_SQL_STREAM",
                "KinesisStreamsOutput": {"ResourceARN": arn(dst), "RoleARN": ROLE},
                "DestinationSchema": {"RecordFormatType": "JSON"},
            }
        ],
    )
    # AWS's reference-data walkthrough: add the S3 source, then the code that joins it.
    kda.add_application_reference_data_source(
        ApplicationName=app,
        CurrentApplicationVersionId=1,
        ReferenceDataSource={
            "TableName": "CompanyName",
            "S3ReferenceDataSource": {
                "BucketARN": "arn:aws:s3:::reference",
                "FileKey": "TickerReference.csv",
                "ReferenceRoleARN": ROLE,
            },
            "ReferenceSchema": {
                "RecordFormat": {
                    "RecordFormatType": "CSV",
                    "MappingParameters": {
                        "CSVMappingParameters": {
                            "RecordRowDelimiter": "\n",
                            "RecordColumnDelimiter": ",",
                        }
                    },
                },
                "RecordEncoding": "UTF-8",
                "RecordColumns": [
                    {"Name": "Ticker", "SqlType": "VARCHAR(4)"},
                    {"Name": "Company", "SqlType": "VARCHAR(20)"},
                ],
            },
        },
    )
    kda.update_application(
        ApplicationName=app,
        CurrentApplicationVersionId=2,
        ApplicationUpdate={"ApplicationCodeUpdate": CODE},
    )
    kda.start_application(
        ApplicationName=app,
        InputConfigurations=[
            {
                "Id": "1.1",
                "InputStartingPositionConfiguration": {"InputStartingPosition": "TRIM_HORIZON"},
            }
        ],
    )
    for ticker, price in [("AMZN", 100.0), ("MSFT", 50.0)]:
        kinesis.put_record(
            StreamName=src,
            Data=json.dumps({"TICKER_SYMBOL": ticker, "PRICE": price}).encode(),
            PartitionKey="pk",
        )
    rows = wait_records(kinesis, dst, 2)
    assert rows == [
        {"TICKER_SYMBOL": "AMZN", "Company": "Amazon", "PRICE": 100.0},
        {"TICKER_SYMBOL": "MSFT", "Company": None, "PRICE": 50.0},
    ]

    # KDA reloads reference data on UpdateApplication, not by itself.
    s3.put_object(
        Bucket="reference",
        Key="TickerReference.csv",
        Body=b"AMZN,Amazon\nMSFT,Microsoft\n",
    )
    version = kda.describe_application(ApplicationName=app)["ApplicationDetail"][
        "ApplicationVersionId"
    ]
    kda.update_application(
        ApplicationName=app,
        CurrentApplicationVersionId=version,
        ApplicationUpdate={"ApplicationCodeUpdate": CODE},
    )
    deadline = time.time() + 10
    while kda.describe_application(ApplicationName=app)["ApplicationDetail"][
        "ApplicationStatus"
    ] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.1)
    kinesis.put_record(
        StreamName=src,
        Data=json.dumps({"TICKER_SYMBOL": "MSFT", "PRICE": 51.0}).encode(),
        PartitionKey="pk",
    )
    rows = wait_records(kinesis, dst, 3)
    assert rows[2] == {"TICKER_SYMBOL": "MSFT", "Company": "Microsoft", "PRICE": 51.0}


def test_an_application_writes_its_output_through_a_delivery_stream_into_s3(kda_server, garage):
    """KinesisFirehoseOutput: the application's rows go to a DirectPut delivery stream, which
    delivers them to Garage."""
    kinesis = make_client(kda_server.url)
    kda = analytics_client(kda_server.url)
    firehose = boto3.client(
        "firehose",
        endpoint_url=kda_server.url,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy-secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    src, ds, app = unique("in"), unique("to-s3"), unique("fh-out")
    create_stream(kinesis, src)
    firehose.create_delivery_stream(
        DeliveryStreamName=ds,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::reference",
            "Prefix": f"{ds}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    )
    ds_arn = firehose.describe_delivery_stream(DeliveryStreamName=ds)["DeliveryStreamDescription"][
        "DeliveryStreamARN"
    ]
    output = {
        "Name": "DESTINATION_SQL_STREAM",
        "KinesisFirehoseOutput": {"ResourceARN": ds_arn, "RoleARN": ROLE},
        "DestinationSchema": {"RecordFormatType": "JSON"},
    }
    inputs = [
        {
            "NamePrefix": "SOURCE_SQL_STREAM",
            "KinesisStreamsInput": {"ResourceARN": arn(src), "RoleARN": ROLE},
            "InputSchema": {
                "RecordFormat": {
                    "RecordFormatType": "JSON",
                    "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}},
                },
                "RecordEncoding": "UTF-8",
                "RecordColumns": [
                    column("TICKER_SYMBOL", "VARCHAR(4)"),
                    column("PRICE", "DOUBLE"),
                ],
            },
        }
    ]
    code = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001" WHERE price > 10;
"""
    # An unknown delivery stream is refused, as AWS refuses it.
    bad = dict(output, KinesisFirehoseOutput={"ResourceARN": ds_arn + "-nope", "RoleARN": ROLE})
    with pytest.raises(kda.exceptions.InvalidArgumentException):
        kda.create_application(
            ApplicationName=unique("bad"), ApplicationCode=code, Inputs=inputs, Outputs=[bad]
        )
    kda.create_application(
        ApplicationName=app, ApplicationCode=code, Inputs=inputs, Outputs=[output]
    )
    kda.start_application(
        ApplicationName=app,
        InputConfigurations=[
            {
                "Id": "1.1",
                "InputStartingPositionConfiguration": {"InputStartingPosition": "TRIM_HORIZON"},
            }
        ],
    )
    for ticker, price in [("AMZN", 100.0), ("TGT", 5.0), ("MSFT", 50.0)]:
        kinesis.put_record(
            StreamName=src,
            Data=json.dumps({"TICKER_SYMBOL": ticker, "PRICE": price}).encode(),
            PartitionKey="pk",
        )
    deadline = time.time() + 30
    while True:
        objs = garage.objects(f"{ds}/")
        text = b"".join(objs[k] for k in sorted(objs)).decode()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        if len(rows) >= 2 or time.time() > deadline:
            break
        time.sleep(0.25)
    # Each delivery is its own object and keys do not sort by time: compare the rows as a set.
    assert sorted(rows, key=lambda r: r["TICKER_SYMBOL"]) == [
        {"TICKER_SYMBOL": "AMZN", "PRICE": 100.0},
        {"TICKER_SYMBOL": "MSFT", "PRICE": 50.0},
    ]
