"""Kinesis's per-shard throughput limits, on a server started with limits on.

Each shard takes 1 MiB/s or 1000 records/s of writes and 5 GetRecords calls/s. Every test
here runs for at most a couple of seconds.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from conftest import ACCOUNT, create_stream

SHARD0 = "shardId-000000000000"


def rate_message(stream):
    return f"Rate exceeded for shard {SHARD0} in stream {stream} under account {ACCOUNT}."


def burst(n, fn):
    """Runs fn() n times at once; returns (results, ClientErrors)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn) for _ in range(n)]
    ok, errors = [], []
    for f in futures:
        try:
            ok.append(f.result())
        except ClientError as e:
            errors.append(e)
    return ok, errors


def test_put_record_over_one_mebibyte_per_second_is_throttled(limited_kinesis, stream_name):
    k = limited_kinesis
    create_stream(k, stream_name, 1)
    chunk = os.urandom(512 * 1024)
    # 4 MiB at once: far more than one second's worth.
    ok, errors = burst(8, lambda: k.put_record(StreamName=stream_name, Data=chunk, PartitionKey="k"))
    assert errors, f"{len(ok)} x 512 KiB accepted at once"
    for e in errors:
        assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert e.response["Error"]["Message"] == rate_message(stream_name)
    assert len(ok) >= 2  # a full second's worth is allowed


def test_put_records_over_1000_records_per_second_fails_only_the_excess_entries(
    limited_kinesis, stream_name
):
    k = limited_kinesis
    create_stream(k, stream_name, 1)
    results = []
    for i in range(4):
        r = k.put_records(
            StreamName=stream_name,
            Records=[{"Data": f"{i}-{j}".encode(), "PartitionKey": "k"} for j in range(500)],
        )
        results.append(r)
    failed = [e for r in results for e in r["Records"] if "ErrorCode" in e]
    ok = [e for r in results for e in r["Records"] if "SequenceNumber" in e]
    assert failed, "2000 records in one go were all accepted"
    assert sum(r["FailedRecordCount"] for r in results) == len(failed)
    for r in results:
        assert len(r["Records"]) == 500
    for e in failed:
        assert e["ErrorCode"] == "ProvisionedThroughputExceededException"
        assert e["ErrorMessage"] == rate_message(stream_name)
        assert "SequenceNumber" not in e and "ShardId" not in e
    for e in ok:
        assert e["ShardId"] == SHARD0
    # Only the accepted entries were stored.
    time.sleep(0.25)
    it = k.get_shard_iterator(StreamName=stream_name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    got = k.get_records(ShardIterator=it)["Records"]
    assert [r["SequenceNumber"] for r in got] == [e["SequenceNumber"] for e in ok]


def test_throttled_writes_succeed_again_after_a_second(limited_kinesis, stream_name):
    k = limited_kinesis
    create_stream(k, stream_name, 1)
    for _ in range(3):
        k.put_records(
            StreamName=stream_name, Records=[{"Data": b"x", "PartitionKey": "k"} for _ in range(500)]
        )
    time.sleep(1.2)
    r = k.put_record(StreamName=stream_name, Data=b"again", PartitionKey="k")
    assert r["SequenceNumber"]


def test_limits_are_per_shard(limited_kinesis, stream_name):
    k = limited_kinesis
    create_stream(k, stream_name, 2)
    # Fill shard 0's budget; shard 1 still takes writes.
    for _ in range(3):
        k.put_records(
            StreamName=stream_name,
            Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "0"} for _ in range(500)],
        )
    r = k.put_records(
        StreamName=stream_name,
        Records=[{"Data": b"y", "PartitionKey": "k", "ExplicitHashKey": str(2**128 - 1)} for _ in range(100)],
    )
    assert r["FailedRecordCount"] == 0


def test_more_than_five_get_records_calls_per_second_are_throttled(limited_kinesis, stream_name):
    k = limited_kinesis
    create_stream(k, stream_name, 1)
    k.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k")
    it = k.get_shard_iterator(StreamName=stream_name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    # A dozen reads at once: more than five in a second.
    ok, errors = burst(12, lambda: k.get_records(ShardIterator=it))
    assert errors, f"{len(ok)} simultaneous GetRecords calls were not throttled"
    for e in errors:
        assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert len(ok) >= 5
    assert all(r["Records"][0]["Data"] == b"x" for r in ok)
    # The same iterator still works once the second has passed.
    time.sleep(1.1)
    assert "Records" in k.get_records(ShardIterator=it)


def test_the_no_limits_server_does_not_throttle(kinesis, stream):
    for _ in range(4):
        r = kinesis.put_records(
            StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"} for _ in range(500)]
        )
        assert r["FailedRecordCount"] == 0
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD0, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    for _ in range(12):
        it = kinesis.get_records(ShardIterator=it)["NextShardIterator"]
