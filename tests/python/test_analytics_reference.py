"""Kinesis Data Analytics reference data with boto3: the table's CSV object is uploaded to a real
S3-compatible server (Garage), the application joins it, and UpdateApplication reloads it."""

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
