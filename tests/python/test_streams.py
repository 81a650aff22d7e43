"""Stream lifecycle: CreateStream, DeleteStream, DescribeStream(Summary), ListStreams."""

import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, create_stream, error_code, error_message, make_client, unique

MAX_HASH = 2**128 - 1
NAME_PATTERN = "[a-zA-Z0-9_.-]+"


@pytest.fixture(scope="module")
def raw_kinesis(server):
    """A client that skips botocore's own parameter checks, so the server's validation shows."""
    return make_client(server.url, parameter_validation=False)


def test_a_provisioned_stream_is_active_with_the_requested_shards_covering_the_whole_hash_space(
    kinesis, stream_name
):
    create_stream(kinesis, stream_name, 3)
    d = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert d["StreamName"] == stream_name
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream_name}"
    assert d["RetentionPeriodHours"] == 24
    assert d["EncryptionType"] == "NONE"
    assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert d["HasMoreShards"] is False
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert [s["ShardId"] for s in d["Shards"]] == [
        "shardId-000000000000",
        "shardId-000000000001",
        "shardId-000000000002",
    ]
    ranges = [
        (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
        for s in d["Shards"]
    ]
    # The boundaries AWS uses for three shards.
    assert ranges == [
        (0, 113427455640312821154458202477256070484),
        (113427455640312821154458202477256070485, 226854911280625642308916404954512140969),
        (226854911280625642308916404954512140970, MAX_HASH),
    ]
    for s in d["Shards"]:
        assert s["SequenceNumberRange"]["StartingSequenceNumber"].isdigit()
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]
        assert "ParentShardId" not in s


def test_stream_creation_timestamp_is_the_time_of_creation(kinesis, stream_name):
    before = datetime.datetime.now(datetime.timezone.utc)
    create_stream(kinesis, stream_name, 1)
    after = datetime.datetime.now(datetime.timezone.utc)
    ts = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"][
        "StreamCreationTimestamp"
    ]
    assert before - datetime.timedelta(seconds=2) <= ts <= after + datetime.timedelta(seconds=2)


def test_an_on_demand_stream_can_be_created_without_a_shard_count(kinesis, stream_name):
    create_stream(kinesis, stream_name, None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert s["OpenShardCount"] >= 1
    # It takes writes straight away.
    r = kinesis.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k")
    assert r["ShardId"].startswith("shardId-")


def test_creating_a_stream_whose_name_is_taken_is_resource_in_use(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    assert error_code(e) == "ResourceInUseException"
    assert error_message(e) == f"Stream {stream} under account {ACCOUNT} already exists."


def test_a_stream_name_with_illegal_characters_is_a_validation_error_in_coral_format(raw_kinesis):
    with pytest.raises(ClientError) as e:
        raw_kinesis.create_stream(StreamName="bad name!", ShardCount=1)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}"
    )


def test_a_stream_name_longer_than_128_characters_is_a_validation_error(raw_kinesis):
    name = "a" * 129
    with pytest.raises(ClientError) as e:
        raw_kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        f"1 validation error detected: Value '{name}' at 'streamName' failed to satisfy "
        "constraint: Member must have length less than or equal to 128"
    )


def test_an_empty_stream_name_reports_both_the_pattern_and_the_length_error(raw_kinesis):
    with pytest.raises(ClientError) as e:
        raw_kinesis.delete_stream(StreamName="")
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "2 validation errors detected: "
        "Value '' at 'streamName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}; "
        "Value '' at 'streamName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_a_shard_count_of_zero_is_a_validation_error(raw_kinesis, stream_name):
    with pytest.raises(ClientError) as e:
        raw_kinesis.create_stream(StreamName=stream_name, ShardCount=0)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value '0' at 'shardCount' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1"
    )


def test_validation_errors_are_reported_before_the_stream_is_looked_up(raw_kinesis):
    # The stream does not exist, but the bad name is what gets reported.
    with pytest.raises(ClientError) as e:
        raw_kinesis.describe_stream(StreamName="no such stream")
    assert error_code(e) == "ValidationException"


def test_describing_a_missing_stream_is_resource_not_found_with_the_aws_message(kinesis):
    name = unique("missing")
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamName=name)
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == f"Stream {name} under account {ACCOUNT} not found."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "call",
    [
        lambda k, n: k.describe_stream_summary(StreamName=n),
        lambda k, n: k.delete_stream(StreamName=n),
        lambda k, n: k.put_record(StreamName=n, Data=b"x", PartitionKey="k"),
        lambda k, n: k.put_records(StreamName=n, Records=[{"Data": b"x", "PartitionKey": "k"}]),
        lambda k, n: k.list_shards(StreamName=n),
        lambda k, n: k.add_tags_to_stream(StreamName=n, Tags={"a": "b"}),
        lambda k, n: k.list_tags_for_stream(StreamName=n),
        lambda k, n: k.increase_stream_retention_period(StreamName=n, RetentionPeriodHours=48),
    ],
    ids=[
        "DescribeStreamSummary",
        "DeleteStream",
        "PutRecord",
        "PutRecords",
        "ListShards",
        "AddTagsToStream",
        "ListTagsForStream",
        "IncreaseStreamRetentionPeriod",
    ],
)
def test_every_operation_on_a_missing_stream_is_resource_not_found(kinesis, call):
    name = unique("missing")
    with pytest.raises(ClientError) as e:
        call(kinesis, name)
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == f"Stream {name} under account {ACCOUNT} not found."


def test_a_deleted_stream_is_gone_from_describe_and_list(kinesis, stream):
    kinesis.delete_stream(StreamName=stream)
    # DeleteStream is asynchronous: DELETING for a while is allowed, then gone.
    import time

    deadline = time.time() + 10
    while True:
        try:
            st = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
            assert st["StreamStatus"] == "DELETING"
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        assert time.time() < deadline, "stream never went away"
        time.sleep(0.05)
    names = kinesis.list_streams(ExclusiveStartStreamName=stream[:-1])["StreamNames"]
    assert stream not in names


def test_a_stream_can_be_recreated_with_the_same_name_after_deletion_and_starts_empty(
    kinesis, stream
):
    kinesis.put_record(StreamName=stream, Data=b"old", PartitionKey="k")
    kinesis.delete_stream(StreamName=stream)
    import time

    for _ in range(200):
        try:
            kinesis.describe_stream_summary(StreamName=stream)
        except ClientError:
            break
        time.sleep(0.05)
    create_stream(kinesis, stream, 1)
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"] == []


def test_deleting_a_stream_with_consumers_needs_enforce_consumer_deletion(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c1")
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=stream)
    assert error_code(e) == "ResourceInUseException"
    kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    import time

    for _ in range(200):
        try:
            kinesis.describe_stream_summary(StreamName=stream)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ResourceNotFoundException"
            return
        time.sleep(0.05)
    pytest.fail("stream was not deleted")


def test_describe_stream_pages_shards_with_limit_and_exclusive_start_shard_id(kinesis, stream_name):
    create_stream(kinesis, stream_name, 5)
    p1 = kinesis.describe_stream(StreamName=stream_name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in p1["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    assert p1["HasMoreShards"] is True
    p2 = kinesis.describe_stream(
        StreamName=stream_name, Limit=2, ExclusiveStartShardId="shardId-000000000001"
    )["StreamDescription"]
    assert [s["ShardId"] for s in p2["Shards"]] == ["shardId-000000000002", "shardId-000000000003"]
    assert p2["HasMoreShards"] is True
    p3 = kinesis.describe_stream(
        StreamName=stream_name, Limit=2, ExclusiveStartShardId="shardId-000000000003"
    )["StreamDescription"]
    assert [s["ShardId"] for s in p3["Shards"]] == ["shardId-000000000004"]
    assert p3["HasMoreShards"] is False


def test_describe_stream_summary_counts_open_shards_and_consumers(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    s = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert s["StreamName"] == stream_name
    assert s["StreamStatus"] == "ACTIVE"
    assert s["OpenShardCount"] == 2
    assert s["ConsumerCount"] == 0
    assert s["RetentionPeriodHours"] == 24
    assert s["EncryptionType"] == "NONE"
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert s["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert s["StreamARN"].endswith(f":stream/{stream_name}")
    kinesis.register_stream_consumer(StreamARN=s["StreamARN"], ConsumerName="c")
    s = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert s["ConsumerCount"] == 1


def test_a_stream_can_be_addressed_by_its_arn_instead_of_its_name(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    s = kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert s["StreamName"] == stream
    r = kinesis.put_record(StreamARN=arn, Data=b"by-arn", PartitionKey="k")
    assert r["ShardId"] == "shardId-000000000000"


def test_list_streams_pages_in_name_order_with_next_token_and_stream_summaries(kinesis):
    prefix = unique("ls")
    names = [f"{prefix}-{c}" for c in "abc"]
    for n in reversed(names):
        create_stream(kinesis, n, 1)
    # Find our streams with ExclusiveStartStreamName just before them.
    page = kinesis.list_streams(Limit=2, ExclusiveStartStreamName=f"{prefix}-")
    assert page["StreamNames"] == names[:2]
    assert page["HasMoreStreams"] is True
    assert [s["StreamName"] for s in page["StreamSummaries"]] == names[:2]
    for s in page["StreamSummaries"]:
        assert s["StreamStatus"] == "ACTIVE"
        assert s["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{s['StreamName']}"
        assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert isinstance(s["StreamCreationTimestamp"], datetime.datetime)
    assert page["NextToken"]
    page2 = kinesis.list_streams(NextToken=page["NextToken"], Limit=1)
    assert page2["StreamNames"] == names[2:3]


def test_list_streams_next_token_walks_every_stream_exactly_once(kinesis):
    prefix = unique("walk")
    names = {f"{prefix}-{i}" for i in range(4)}
    for n in names:
        create_stream(kinesis, n, 1)
    seen = []
    page = kinesis.list_streams(Limit=3)
    seen += page["StreamNames"]
    while page.get("HasMoreStreams"):
        page = kinesis.list_streams(Limit=3, NextToken=page["NextToken"])
        seen += page["StreamNames"]
    assert len(seen) == len(set(seen))
    assert names <= set(seen)
    assert seen == sorted(seen)


def test_list_streams_returns_at_most_100_names_per_call(kinesis):
    prefix = unique("many")
    for i in range(101):
        kinesis.create_stream(StreamName=f"{prefix}-{i:03d}", ShardCount=1)
    page = kinesis.list_streams(Limit=10000, ExclusiveStartStreamName=f"{prefix}-")
    assert len(page["StreamNames"]) == 100
    assert page["HasMoreStreams"] is True
    assert page["StreamNames"][0] == f"{prefix}-000"


def test_describe_stream_returns_at_most_100_shards_per_call(kinesis, stream_name):
    create_stream(kinesis, stream_name, 101)
    d = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert len(d["Shards"]) == 100
    assert d["HasMoreShards"] is True
    rest = kinesis.describe_stream(StreamName=stream_name, ExclusiveStartShardId=d["Shards"][-1]["ShardId"])
    assert [s["ShardId"] for s in rest["StreamDescription"]["Shards"]] == ["shardId-000000000100"]


def test_streams_and_records_survive_a_restart_with_a_data_dir(tmp_path):
    from conftest import Server

    data = tmp_path / "data"
    s = Server("--no-limits", "--data-dir", str(data), name="durable", tmp_path=tmp_path)
    try:
        k = make_client(s.url)
        create_stream(k, "durable", 2)
        k.add_tags_to_stream(StreamName="durable", Tags={"keep": "me"})
        sent = k.put_records(
            StreamName="durable",
            Records=[{"Data": f"r{i}".encode(), "PartitionKey": str(i)} for i in range(20)],
        )["Records"]
    finally:
        assert s.stop() == 0, "SIGTERM did not stop the server cleanly"
    s = Server("--no-limits", "--data-dir", str(data), name="durable2", tmp_path=tmp_path)
    try:
        k = make_client(s.url)
        summary = k.describe_stream_summary(StreamName="durable")["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE"
        assert summary["OpenShardCount"] == 2
        assert k.list_tags_for_stream(StreamName="durable")["Tags"] == [{"Key": "keep", "Value": "me"}]
        got = {}
        for shard in ("shardId-000000000000", "shardId-000000000001"):
            it = k.get_shard_iterator(
                StreamName="durable", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for r in k.get_records(ShardIterator=it)["Records"]:
                got[r["SequenceNumber"]] = r["Data"]
        assert got == {e["SequenceNumber"]: f"r{i}".encode() for i, e in enumerate(sent)}
        # New writes continue after the old ones.
        new = k.put_record(StreamName="durable", Data=b"after", PartitionKey="0")
        old_max = max(int(e["SequenceNumber"]) for e in sent if e["ShardId"] == new["ShardId"])
        assert int(new["SequenceNumber"]) > old_max
    finally:
        s.stop()
