"""The AWS CLI (`aws kinesis ...`) against the server, JSON output parsed."""

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import ACCOUNT, unique


def aws_binary():
    venv_aws = pathlib.Path(sys.executable).parent / "aws"
    if venv_aws.exists():
        return str(venv_aws)
    found = shutil.which("aws")
    if not found:
        pytest.skip("AWS CLI not installed")
    return found


@pytest.fixture(scope="module")
def aws(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("awscli")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "dummy-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    exe = aws_binary()

    def run(*args, check=True):
        p = subprocess.run(
            [exe, "--endpoint-url", server.url, "--output", "json", "kinesis", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout) if p.stdout.strip() else None
        return p

    return run


def test_the_cli_creates_describes_and_lists_a_stream(aws):
    name = unique("cli")
    assert aws("create-stream", "--stream-name", name, "--shard-count", "2") is None
    s = aws("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
    assert s["StreamName"] == name
    assert s["OpenShardCount"] == 2
    assert s["StreamStatus"] == "ACTIVE"
    # The CLI pages through ListStreams by itself.
    assert name in aws("list-streams")["StreamNames"]
    shards = aws("list-shards", "--stream-name", name)["Shards"]
    assert [x["ShardId"] for x in shards] == ["shardId-000000000000", "shardId-000000000001"]


def test_the_cli_puts_and_gets_records_with_base64_data(aws, kinesis):
    name = unique("cli")
    aws("create-stream", "--stream-name", name, "--shard-count", "1")
    # AWS CLI v1 sends --data as given (v2 would base64-decode it first).
    put = aws("put-record", "--stream-name", name, "--partition-key", "k", "--data", "aGVsbG8=")
    assert put["ShardId"] == "shardId-000000000000"
    it = aws(
        "get-shard-iterator",
        "--stream-name",
        name,
        "--shard-id",
        put["ShardId"],
        "--shard-iterator-type",
        "TRIM_HORIZON",
    )["ShardIterator"]
    out = aws("get-records", "--shard-iterator", it)
    recs = out["Records"]
    assert len(recs) == 1
    assert recs[0]["SequenceNumber"] == put["SequenceNumber"]
    assert recs[0]["PartitionKey"] == "k"
    assert out["MillisBehindLatest"] == 0
    # The CLI prints blobs base64-encoded; they match what an SDK reads.
    stored = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(
            StreamName=name, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"][0]["Data"]
    assert stored in (b"aGVsbG8=", b"hello")
    assert base64.b64decode(recs[0]["Data"]) == stored


def test_the_cli_reports_a_missing_stream_as_resource_not_found(aws):
    name = unique("cli-missing")
    p = aws("describe-stream", "--stream-name", name, check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr
    assert f"Stream {name} under account {ACCOUNT} not found." in p.stderr


def test_the_cli_manages_tags_and_retention(aws):
    name = unique("cli")
    aws("create-stream", "--stream-name", name, "--shard-count", "1")
    aws("add-tags-to-stream", "--stream-name", name, "--tags", "team=data,env=ci")
    tags = aws("list-tags-for-stream", "--stream-name", name)["Tags"]
    assert tags == [{"Key": "env", "Value": "ci"}, {"Key": "team", "Value": "data"}]
    aws("increase-stream-retention-period", "--stream-name", name, "--retention-period-hours", "48")
    s = aws("describe-stream", "--stream-name", name)["StreamDescription"]
    assert s["RetentionPeriodHours"] == 48
    aws("delete-stream", "--stream-name", name)
