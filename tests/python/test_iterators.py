"""GetShardIterator: the five iterator types, invalid and expired iterators."""

import datetime
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, create_stream, error_code, error_message, make_client, unique

SHARD0 = "shardId-000000000000"


@pytest.fixture(scope="module")
def raw_kinesis(server):
    return make_client(server.url, parameter_validation=False)


def put_five(kinesis, stream):
    return [
        kinesis.put_record(StreamName=stream, Data=f"r{i}".encode(), PartitionKey="k")[
            "SequenceNumber"
        ]
        for i in range(5)
    ]


def read(kinesis, stream, **kw):
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, **kw)["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]]


def test_trim_horizon_starts_at_the_oldest_record(kinesis, stream):
    put_five(kinesis, stream)
    assert read(kinesis, stream, ShardIteratorType="TRIM_HORIZON") == [
        b"r0",
        b"r1",
        b"r2",
        b"r3",
        b"r4",
    ]


def test_latest_only_sees_records_put_after_the_iterator_was_taken(kinesis, stream):
    put_five(kinesis, stream)
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    kinesis.put_record(StreamName=stream, Data=b"after", PartitionKey="k")
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == [b"after"]


def test_at_sequence_number_starts_at_that_record(kinesis, stream):
    seqs = put_five(kinesis, stream)
    got = read(
        kinesis, stream, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]
    )
    assert got == [b"r2", b"r3", b"r4"]


def test_after_sequence_number_starts_just_after_that_record(kinesis, stream):
    seqs = put_five(kinesis, stream)
    got = read(
        kinesis, stream, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]
    )
    assert got == [b"r3", b"r4"]
    last = read(
        kinesis, stream, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[4]
    )
    assert last == []


def test_at_timestamp_starts_at_the_first_record_at_or_after_the_time(kinesis, stream):
    kinesis.put_record(StreamName=stream, Data=b"before", PartitionKey="k")
    time.sleep(0.3)
    mark = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.3)
    kinesis.put_record(StreamName=stream, Data=b"after-1", PartitionKey="k")
    kinesis.put_record(StreamName=stream, Data=b"after-2", PartitionKey="k")
    assert read(kinesis, stream, ShardIteratorType="AT_TIMESTAMP", Timestamp=mark) == [
        b"after-1",
        b"after-2",
    ]


def test_at_timestamp_on_a_record_arrival_time_includes_that_record(kinesis, stream):
    put_five(kinesis, stream)
    recs = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(
            StreamName=stream, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"]
    ts = recs[0]["ApproximateArrivalTimestamp"]
    got = read(kinesis, stream, ShardIteratorType="AT_TIMESTAMP", Timestamp=ts)
    assert got[0] == b"r0"


def test_at_timestamp_without_a_timestamp_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="AT_TIMESTAMP")
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
        "Current request has no timestamp parameter."
    )


def test_at_timestamp_in_the_future_is_invalid_argument(kinesis, stream):
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream, ShardId=SHARD0, ShardIteratorType="AT_TIMESTAMP", Timestamp=future
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e).startswith(
        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis."
    )


@pytest.mark.parametrize("kind", ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"])
def test_sequence_number_iterators_need_a_starting_sequence_number(kinesis, stream, kind):
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType=kind)
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
        "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
        f"Request specified {kind} and no StartingSequenceNumber."
    )


def test_trim_horizon_with_a_starting_sequence_number_is_invalid_argument(kinesis, stream):
    seq = put_five(kinesis, stream)[0]
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=SHARD0,
            ShardIteratorType="TRIM_HORIZON",
            StartingSequenceNumber=seq,
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e).endswith(
        "Request specified TRIM_HORIZON and also a StartingSequenceNumber."
    )


def test_a_sequence_number_from_another_shard_is_invalid_argument(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    r = kinesis.put_record(
        StreamName=stream_name, Data=b"x", PartitionKey="k", ExplicitHashKey="0"
    )
    assert r["ShardId"] == SHARD0
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream_name,
            ShardId="shardId-000000000001",
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=r["SequenceNumber"],
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in "
        "a call to a shard with shardId-000000000001"
    )


def test_an_unknown_iterator_type_is_a_validation_error_listing_the_types(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="OLDEST")
    assert error_code(e) == "ValidationException"
    msg = error_message(e)
    assert msg.startswith(
        "1 validation error detected: Value 'OLDEST' at 'shardIteratorType' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    for t in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        assert t in msg


def test_an_iterator_for_a_shard_that_does_not_exist_is_resource_not_found(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream, ShardId="shardId-000000000007", ShardIteratorType="TRIM_HORIZON"
        )
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == (
        f"Shard shardId-000000000007 in stream {stream} under account {ACCOUNT} does not exist"
    )


def test_an_iterator_for_a_missing_stream_is_resource_not_found(kinesis):
    name = unique("gone")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="LATEST")
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == (
        f"Shard {SHARD0} in stream {name} under account {ACCOUNT} does not exist"
    )


def test_a_garbage_shard_iterator_is_invalid_argument(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator="this-is-not-an-iterator")
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == "Invalid ShardIterator."


def test_a_tampered_shard_iterator_is_invalid_argument(kinesis, stream):
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    mid = len(it) // 2
    forged = it[:mid] + ("A" if it[mid] != "A" else "B") + it[mid + 1 :]
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator=forged)
    assert error_code(e) == "InvalidArgumentException"


def test_an_iterator_for_one_stream_does_not_read_another(kinesis, stream, stream_name):
    other = create_stream(kinesis, stream_name + "-b", 1)
    kinesis.put_record(StreamName=other, Data=b"secret", PartitionKey="k")
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    assert kinesis.get_records(ShardIterator=it)["Records"] == []


def test_shard_iterators_are_opaque_strings_of_at_most_512_characters(kinesis, stream):
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    assert isinstance(it, str)
    assert 1 <= len(it) <= 512
    assert stream not in it


def test_an_iterator_on_a_deleted_stream_is_resource_not_found(kinesis, stream):
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    kinesis.delete_stream(StreamName=stream)
    for _ in range(200):
        try:
            kinesis.describe_stream_summary(StreamName=stream)
        except ClientError:
            break
        time.sleep(0.05)
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator=it)
    assert error_code(e) == "ResourceNotFoundException"


def test_an_iterator_expires_after_five_minutes(clock_kinesis, clock_server, stream_name):
    create_stream(clock_kinesis, stream_name, 1)
    it = clock_kinesis.get_shard_iterator(
        StreamName=stream_name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    # Still good after four minutes...
    clock_server.advance_clock(4 * 60 * 1000)
    r = clock_kinesis.get_records(ShardIterator=it)
    assert r["Records"] == []
    # ...but not after six.
    clock_server.advance_clock(2 * 60 * 1000)
    with pytest.raises(ClientError) as e:
        clock_kinesis.get_records(ShardIterator=it)
    assert error_code(e) == "ExpiredIteratorException"
    msg = error_message(e)
    assert msg.startswith("Iterator expired. The iterator was created at time ")
    assert msg.endswith(
        "which is further in the future than the tolerated delay of 300000 milliseconds."
    )
    # The NextShardIterator from a fresh read works again.
    it2 = clock_kinesis.get_shard_iterator(
        StreamName=stream_name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert clock_kinesis.get_records(ShardIterator=it2)["Records"] == []


def test_a_starting_sequence_number_this_stream_never_issued_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=SHARD0,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber="123",
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        f"StartingSequenceNumber 123 used in GetShardIterator on shard {SHARD0} in stream "
        f"{stream} under account {ACCOUNT} is invalid."
    )


def test_a_sequence_number_from_a_deleted_and_recreated_stream_is_refused(kinesis, stream):
    seq = kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")["SequenceNumber"]
    kinesis.delete_stream(StreamName=stream)
    for _ in range(200):
        try:
            kinesis.describe_stream_summary(StreamName=stream)
        except ClientError:
            break
        time.sleep(0.05)
    create_stream(kinesis, stream, 1)
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=SHARD0,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=seq,
        )
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e).endswith("is invalid because it did not come from this stream.")
