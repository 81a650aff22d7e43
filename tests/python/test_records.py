"""PutRecord, PutRecords and GetRecords: routing, ordering, byte-exact data, limits."""

import datetime
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT,
    create_stream,
    error_code,
    error_message,
    make_client,
    read_all,
    trim_horizon_records,
)

MAX_HASH = 2**128 - 1


@pytest.fixture(scope="module")
def raw_kinesis(server):
    return make_client(server.url, parameter_validation=False)


def md5_hash_key(pk):
    return int.from_bytes(hashlib.md5(pk.encode()).digest(), "big")


def shard_for(shards, hash_key):
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= hash_key <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError(f"no shard covers {hash_key}")


def test_put_record_returns_the_shard_and_a_numeric_sequence_number(kinesis, stream):
    r = kinesis.put_record(StreamName=stream, Data=b"hello", PartitionKey="pk")
    assert r["ShardId"] == "shardId-000000000000"
    assert r["SequenceNumber"].isdigit()
    assert r["EncryptionType"] == "NONE"


def test_sequence_numbers_increase_within_a_shard(kinesis, stream):
    seqs = [
        int(kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey=str(i))["SequenceNumber"])
        for i in range(5)
    ]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5


def test_records_round_trip_byte_exact_including_binary_data(kinesis, stream):
    payloads = [bytes(range(256)), os.urandom(1000), b"\x00", "héllo wörld ✓".encode(), b"\xff" * 64]
    sent = [
        kinesis.put_record(StreamName=stream, Data=p, PartitionKey=f"key-{i}")
        for i, p in enumerate(payloads)
    ]
    got = read_all(kinesis, stream)
    assert [r["Data"] for r in got] == payloads
    assert [r["PartitionKey"] for r in got] == [f"key-{i}" for i in range(len(payloads))]
    assert [r["SequenceNumber"] for r in got] == [s["SequenceNumber"] for s in sent]


def test_a_one_mebibyte_record_is_accepted_and_read_back_intact(kinesis, stream):
    data = os.urandom(1024 * 1024 - 10)
    kinesis.put_record(StreamName=stream, Data=data, PartitionKey="big")
    assert read_all(kinesis, stream)[0]["Data"] == data


def test_records_carry_an_approximate_arrival_timestamp_close_to_now(kinesis, stream):
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
    kinesis.put_record(StreamName=stream, Data=b"t", PartitionKey="k")
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    rec = read_all(kinesis, stream)[0]
    assert before <= rec["ApproximateArrivalTimestamp"] <= after


def test_partition_keys_route_to_the_shard_whose_hash_range_holds_their_md5(kinesis, stream_name):
    create_stream(kinesis, stream_name, 4)
    shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
    keys = [f"user-{i}" for i in range(40)]
    for pk in keys[:20]:
        r = kinesis.put_record(StreamName=stream_name, Data=pk.encode(), PartitionKey=pk)
        assert r["ShardId"] == shard_for(shards, md5_hash_key(pk)), pk
    resp = kinesis.put_records(
        StreamName=stream_name, Records=[{"Data": pk.encode(), "PartitionKey": pk} for pk in keys[20:]]
    )
    for pk, r in zip(keys[20:], resp["Records"]):
        assert r["ShardId"] == shard_for(shards, md5_hash_key(pk)), pk
    # And each shard holds exactly the records routed to it.
    for s in shards:
        got = {r["PartitionKey"] for r in read_all(kinesis, stream_name, s["ShardId"])}
        assert got == {pk for pk in keys if shard_for(shards, md5_hash_key(pk)) == s["ShardId"]}


def test_an_explicit_hash_key_overrides_the_partition_key(kinesis, stream_name):
    create_stream(kinesis, stream_name, 4)
    shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
    for s in shards:
        for key in (s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"]):
            r = kinesis.put_record(
                StreamName=stream_name, Data=b"x", PartitionKey="same", ExplicitHashKey=key
            )
            assert r["ShardId"] == s["ShardId"]
    r = kinesis.put_records(
        StreamName=stream_name,
        Records=[
            {"Data": b"a", "PartitionKey": "same", "ExplicitHashKey": "0"},
            {"Data": b"b", "PartitionKey": "same", "ExplicitHashKey": str(MAX_HASH)},
        ],
    )
    assert [x["ShardId"] for x in r["Records"]] == ["shardId-000000000000", "shardId-000000000003"]


def test_an_explicit_hash_key_of_two_to_the_128_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
        f"Specified value was {2**128}"
    )


def test_a_non_numeric_explicit_hash_key_is_a_validation_error(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k", ExplicitHashKey="abc")
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value 'abc' at 'explicitHashKey' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"
    )


def test_put_records_preserves_request_order_in_results_and_in_the_shard(kinesis, stream_name):
    create_stream(kinesis, stream_name, 3)
    entries = [{"Data": f"rec-{i}".encode(), "PartitionKey": f"pk-{i % 7}"} for i in range(60)]
    resp = kinesis.put_records(StreamName=stream_name, Records=entries)
    assert resp["FailedRecordCount"] == 0
    assert len(resp["Records"]) == 60
    assert resp["EncryptionType"] == "NONE"
    by_shard = {}
    for e, r in zip(entries, resp["Records"]):
        assert r["SequenceNumber"].isdigit()
        by_shard.setdefault(r["ShardId"], []).append((r["SequenceNumber"], e["Data"]))
    for shard, expected in by_shard.items():
        got = read_all(kinesis, stream_name, shard)
        assert [(r["SequenceNumber"], r["Data"]) for r in got] == expected
        # Within a shard, later entries in a request get larger sequence numbers.
        seqs = [int(s) for s, _ in expected]
        assert seqs == sorted(seqs)


def test_put_records_accepts_exactly_500_records(kinesis, stream):
    resp = kinesis.put_records(
        StreamName=stream, Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(500)]
    )
    assert resp["FailedRecordCount"] == 0
    assert len(resp["Records"]) == 500


def test_put_records_with_more_than_500_records_is_a_validation_error(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_records(
            StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"} for _ in range(501)]
        )
    assert error_code(e) == "ValidationException"
    msg = error_message(e)
    assert msg.startswith(
        "1 validation error detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@"
    )
    assert msg.endswith(
        "]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"
    )


def test_put_records_with_no_records_is_a_validation_error(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_records(StreamName=stream, Records=[])
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_put_records_over_five_mebibytes_in_total_is_rejected_and_writes_nothing(kinesis, stream):
    chunk = b"z" * (1024 * 1024 - 100)
    with pytest.raises(ClientError) as e:
        kinesis.put_records(
            StreamName=stream, Records=[{"Data": chunk, "PartitionKey": str(i)} for i in range(6)]
        )
    assert error_code(e) == "InvalidArgumentException"
    assert trim_horizon_records(kinesis, stream)["Records"] == []


def test_put_records_reports_the_element_path_of_an_invalid_entry(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": b"x", "PartitionKey": "ok"}, {"Data": b"x", "PartitionKey": ""}],
        )
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value '' at 'records.2.member.partitionKey' failed to "
        "satisfy constraint: Member must have length greater than or equal to 1"
    )


def test_a_record_larger_than_one_mebibyte_is_refused_on_a_default_stream(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=stream, Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert error_code(e) in ("ValidationException", "InvalidArgumentException")
    assert trim_horizon_records(kinesis, stream)["Records"] == []


def test_a_partition_key_longer_than_256_characters_is_a_validation_error(raw_kinesis, stream):
    pk = "p" * 257
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey=pk)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        f"1 validation error detected: Value '{pk}' at 'partitionKey' failed to satisfy "
        "constraint: Member must have length less than or equal to 256"
    )


def test_a_put_record_without_data_or_partition_key_lists_both_errors(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.put_record(StreamName=stream)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "2 validation errors detected: "
        "Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; "
        "Value null at 'data' failed to satisfy constraint: Member must not be null"
    )


def test_get_records_honours_limit_and_continues_with_next_shard_iterator(kinesis, stream):
    kinesis.put_records(
        StreamName=stream, Records=[{"Data": str(i).encode(), "PartitionKey": "k"} for i in range(10)]
    )
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seen = []
    for expected in ([b"0", b"1", b"2"], [b"3", b"4", b"5"], [b"6", b"7", b"8"], [b"9"]):
        r = kinesis.get_records(ShardIterator=it, Limit=3)
        assert [x["Data"] for x in r["Records"]] == expected
        seen += expected
        it = r["NextShardIterator"]
    r = kinesis.get_records(ShardIterator=it, Limit=3)
    assert r["Records"] == []
    assert r["NextShardIterator"]


def test_get_records_reports_zero_millis_behind_latest_when_caught_up(kinesis, stream):
    kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")
    r = trim_horizon_records(kinesis, stream)
    assert len(r["Records"]) == 1
    assert r["MillisBehindLatest"] == 0


def test_get_records_reports_millis_behind_latest_when_records_remain(kinesis, stream):
    import time

    kinesis.put_record(StreamName=stream, Data=b"old", PartitionKey="k")
    time.sleep(1.1)
    kinesis.put_record(StreamName=stream, Data=b"new", PartitionKey="k")
    r = trim_horizon_records(kinesis, stream, limit=1)
    assert [x["Data"] for x in r["Records"]] == [b"old"]
    assert r["MillisBehindLatest"] >= 900


def test_an_iterator_keeps_working_as_new_records_arrive(kinesis, stream):
    r = trim_horizon_records(kinesis, stream)
    assert r["Records"] == []
    kinesis.put_record(StreamName=stream, Data=b"later", PartitionKey="k")
    r2 = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert [x["Data"] for x in r2["Records"]] == [b"later"]


def test_get_records_limit_out_of_range_is_a_validation_error(raw_kinesis, kinesis, stream):
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="LATEST"
    )["ShardIterator"]
    with pytest.raises(ClientError) as e:
        raw_kinesis.get_records(ShardIterator=it, Limit=10001)
    assert error_code(e) == "ValidationException"
    assert error_message(e) == (
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000"
    )
    with pytest.raises(ClientError) as e:
        raw_kinesis.get_records(ShardIterator=it, Limit=0)
    assert error_code(e) == "ValidationException"
    assert "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1" in error_message(e)


def test_put_record_on_a_missing_stream_names_the_stream_and_account(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName="nope-records", Data=b"x", PartitionKey="k")
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == f"Stream nope-records under account {ACCOUNT} not found."


def test_sequence_number_for_ordering_keeps_a_partition_keys_records_in_order(kinesis, stream):
    first = kinesis.put_record(StreamName=stream, Data=b"1", PartitionKey="k")["SequenceNumber"]
    second = kinesis.put_record(
        StreamName=stream, Data=b"2", PartitionKey="k", SequenceNumberForOrdering=first
    )["SequenceNumber"]
    assert int(second) > int(first)


def test_an_invalid_sequence_number_for_ordering_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k", SequenceNumberForOrdering="123")
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        f"ExclusiveMinimumSequenceNumber 123 used in PutRecord on stream {stream} under account "
        f"{ACCOUNT} is invalid."
    )


def test_put_records_with_one_out_of_range_explicit_hash_key_fails_the_whole_call(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": b"ok", "PartitionKey": "k"},
                {"Data": b"bad", "PartitionKey": "k", "ExplicitHashKey": str(2**128)},
            ],
        )
    assert error_code(e) == "InvalidArgumentException"
    assert trim_horizon_records(kinesis, stream)["Records"] == []


def test_a_get_records_response_carries_at_most_10_mebibytes(kinesis, stream):
    mib = 1024 * 1024 - 64
    for i in range(11):
        kinesis.put_record(StreamName=stream, Data=bytes([i]) * mib, PartitionKey="k")
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first = kinesis.get_records(ShardIterator=it)
    assert 1 <= len(first["Records"]) <= 10
    assert sum(len(r["Data"]) for r in first["Records"]) <= 10 * 1024 * 1024
    rest = kinesis.get_records(ShardIterator=first["NextShardIterator"])["Records"]
    assert [r["Data"][0] for r in first["Records"] + rest] == list(range(11))
