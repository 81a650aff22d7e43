"""Retention: records older than the retention period are no longer readable.

These tests move the server's clock (test hook) on a server private to this module.
"""

import datetime

from conftest import create_stream, read_all

HOUR_MS = 3600 * 1000
SHARD0 = "shardId-000000000000"


def put(k, name, *payloads):
    for p in payloads:
        k.put_record(StreamName=name, Data=p, PartitionKey="k")


def test_records_older_than_24_hours_are_gone_from_trim_horizon(clock_kinesis, clock_server, stream_name):
    k = clock_kinesis
    create_stream(k, stream_name, 1)
    put(k, stream_name, b"old-1", b"old-2")
    clock_server.advance_clock(23 * HOUR_MS)
    assert [r["Data"] for r in read_all(k, stream_name)] == [b"old-1", b"old-2"]
    clock_server.advance_clock(2 * HOUR_MS)
    assert read_all(k, stream_name) == []
    put(k, stream_name, b"new")
    assert [r["Data"] for r in read_all(k, stream_name)] == [b"new"]


def test_a_longer_retention_period_keeps_records_until_it_passes(clock_kinesis, clock_server, stream_name):
    k = clock_kinesis
    create_stream(k, stream_name, 1)
    k.increase_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=48)
    put(k, stream_name, b"kept")
    clock_server.advance_clock(25 * HOUR_MS)
    assert [r["Data"] for r in read_all(k, stream_name)] == [b"kept"]
    clock_server.advance_clock(24 * HOUR_MS)
    assert read_all(k, stream_name) == []


def test_decreasing_retention_trims_records_now_outside_it(clock_kinesis, clock_server, stream_name):
    k = clock_kinesis
    create_stream(k, stream_name, 1)
    k.increase_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=72)
    put(k, stream_name, b"30h-old")
    clock_server.advance_clock(30 * HOUR_MS)
    put(k, stream_name, b"fresh")
    assert [r["Data"] for r in read_all(k, stream_name)] == [b"30h-old", b"fresh"]
    k.decrease_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=24)
    clock_server.advance_clock(1000)
    assert [r["Data"] for r in read_all(k, stream_name)] == [b"fresh"]


def test_an_at_timestamp_iterator_before_the_trim_horizon_starts_at_the_oldest_kept_record(
    clock_kinesis, clock_server, stream_name
):
    k = clock_kinesis
    create_stream(k, stream_name, 1)
    put(k, stream_name, b"expired")
    clock_server.advance_clock(25 * HOUR_MS)
    put(k, stream_name, b"kept")
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    it = k.get_shard_iterator(
        StreamName=stream_name, ShardId=SHARD0, ShardIteratorType="AT_TIMESTAMP", Timestamp=long_ago
    )["ShardIterator"]
    assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"kept"]


def test_closed_shards_older_than_the_retention_period_are_no_longer_listed(
    clock_kinesis, clock_server, stream_name
):
    k = clock_kinesis
    create_stream(k, stream_name, 1)
    k.split_shard(StreamName=stream_name, ShardToSplit=SHARD0, NewStartingHashKey=str(2**127))
    ids = [s["ShardId"] for s in k.list_shards(StreamName=stream_name)["Shards"]]
    assert SHARD0 in ids
    clock_server.advance_clock(25 * HOUR_MS)
    ids = [s["ShardId"] for s in k.list_shards(StreamName=stream_name)["Shards"]]
    assert ids == ["shardId-000000000001", "shardId-000000000002"]
    d = k.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == ids
    # The open children still take and serve records.
    k.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k", ExplicitHashKey="0")
    assert [r["Data"] for r in read_all(k, stream_name, "shardId-000000000001")] == [b"x"]
