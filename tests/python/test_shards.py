"""ListShards and resharding: SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode."""

import datetime
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, create_stream, error_code, error_message, wait_active

MAX_HASH = 2**128 - 1
MID = 2**127


def sid(i):
    return f"shardId-{i:012d}"


def shards_of(kinesis, name, **kw):
    return {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name, **kw)["Shards"]}


def hash_range(s):
    return int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])


def test_list_shards_returns_every_shard_with_ranges_and_sequence_numbers(kinesis, stream_name):
    create_stream(kinesis, stream_name, 3)
    r = kinesis.list_shards(StreamName=stream_name)
    assert [s["ShardId"] for s in r["Shards"]] == [sid(0), sid(1), sid(2)]
    assert "NextToken" not in r
    assert hash_range(r["Shards"][0])[0] == 0
    assert hash_range(r["Shards"][-1])[1] == MAX_HASH
    for s in r["Shards"]:
        assert s["SequenceNumberRange"]["StartingSequenceNumber"].isdigit()


def test_list_shards_pages_with_max_results_and_next_token(kinesis, stream_name):
    create_stream(kinesis, stream_name, 5)
    r = kinesis.list_shards(StreamName=stream_name, MaxResults=2)
    ids = [s["ShardId"] for s in r["Shards"]]
    assert ids == [sid(0), sid(1)]
    while "NextToken" in r:
        r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
        ids += [s["ShardId"] for s in r["Shards"]]
    assert ids == [sid(i) for i in range(5)]


def test_list_shards_with_both_next_token_and_stream_name_is_invalid_argument(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    token = kinesis.list_shards(StreamName=stream_name, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamName=stream_name, NextToken=token)
    assert error_code(e) == "InvalidArgumentException"


def test_list_shards_without_stream_or_token_is_invalid_argument(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.list_shards()
    assert error_code(e) == "InvalidArgumentException"


def test_list_shards_with_a_garbage_next_token_is_invalid_argument(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(NextToken="garbage-token")
    assert error_code(e) in ("InvalidArgumentException", "ExpiredNextTokenException")


def test_list_shards_exclusive_start_shard_id_skips_earlier_shards(kinesis, stream_name):
    create_stream(kinesis, stream_name, 4)
    r = kinesis.list_shards(StreamName=stream_name, ExclusiveStartShardId=sid(1))
    assert [s["ShardId"] for s in r["Shards"]] == [sid(2), sid(3)]


@pytest.fixture
def split_stream(kinesis, stream_name):
    """A one-shard stream with a record, split in the middle: shard 0 closed, 1 and 2 open.
    Returns (name, a time while only shard 0 was open)."""
    create_stream(kinesis, stream_name, 1)
    kinesis.put_record(StreamName=stream_name, Data=b"before-split", PartitionKey="k")
    time.sleep(0.3)
    before = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.3)
    kinesis.split_shard(StreamName=stream_name, ShardToSplit=sid(0), NewStartingHashKey=str(MID))
    wait_active(kinesis, stream_name)
    return stream_name, before


def test_split_shard_closes_the_parent_and_creates_two_children_covering_its_range(
    kinesis, split_stream
):
    name, _ = split_stream
    shards = shards_of(kinesis, name)
    assert set(shards) == {sid(0), sid(1), sid(2)}
    parent = shards[sid(0)]
    assert parent["SequenceNumberRange"]["EndingSequenceNumber"].isdigit()
    assert hash_range(parent) == (0, MAX_HASH)
    a, b = shards[sid(1)], shards[sid(2)]
    assert a["ParentShardId"] == sid(0) and b["ParentShardId"] == sid(0)
    assert "AdjacentParentShardId" not in a
    assert hash_range(a) == (0, MID - 1)
    assert hash_range(b) == (MID, MAX_HASH)
    for child in (a, b):
        assert "EndingSequenceNumber" not in child["SequenceNumberRange"]
        assert int(child["SequenceNumberRange"]["StartingSequenceNumber"]) > int(
            parent["SequenceNumberRange"]["EndingSequenceNumber"]
        )
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["OpenShardCount"] == 2


def test_after_a_split_records_go_to_the_children_by_hash_key(kinesis, split_stream):
    name, _ = split_stream
    low = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey="5")
    high = kinesis.put_record(
        StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(MAX_HASH)
    )
    assert low["ShardId"] == sid(1)
    assert high["ShardId"] == sid(2)


def test_reading_a_closed_shard_to_its_end_gives_child_shards_and_no_next_iterator(
    kinesis, split_stream
):
    name, _ = split_stream
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=sid(0), ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    data = []
    for _ in range(10):
        r = kinesis.get_records(ShardIterator=it)
        data += [x["Data"] for x in r["Records"]]
        if "NextShardIterator" not in r:
            break
        it = r["NextShardIterator"]
    else:
        pytest.fail("closed shard never ended")
    assert data == [b"before-split"]
    children = sorted(r["ChildShards"], key=lambda c: c["ShardId"])
    assert [c["ShardId"] for c in children] == [sid(1), sid(2)]
    for c in children:
        assert c["ParentShards"] == [sid(0)]
    assert hash_range(children[0]) == (0, MID - 1)
    assert hash_range(children[1]) == (MID, MAX_HASH)


def test_an_open_shard_read_does_not_report_child_shards(kinesis, split_stream):
    name, _ = split_stream
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=sid(1), ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    r = kinesis.get_records(ShardIterator=it)
    assert r["NextShardIterator"]
    assert not r.get("ChildShards")


def test_list_shards_filters_by_shard_filter_type(kinesis, split_stream):
    name, before = split_stream
    now = datetime.datetime.now(datetime.timezone.utc)

    def ids(flt):
        return sorted(s["ShardId"] for s in kinesis.list_shards(StreamName=name, ShardFilter=flt)["Shards"])

    assert ids({"Type": "AT_LATEST"}) == [sid(1), sid(2)]
    assert ids({"Type": "AT_TRIM_HORIZON"}) == [sid(0)]
    assert ids({"Type": "FROM_TRIM_HORIZON"}) == [sid(0), sid(1), sid(2)]
    assert ids({"Type": "AFTER_SHARD_ID", "ShardId": sid(0)}) == [sid(1), sid(2)]
    assert ids({"Type": "AT_TIMESTAMP", "Timestamp": before}) == [sid(0)]
    assert ids({"Type": "FROM_TIMESTAMP", "Timestamp": before}) == [sid(0), sid(1), sid(2)]
    assert ids({"Type": "AT_TIMESTAMP", "Timestamp": now}) == [sid(1), sid(2)]


def test_a_shard_filter_after_shard_id_without_a_shard_id_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamName=stream, ShardFilter={"Type": "AFTER_SHARD_ID"})
    assert error_code(e) == "InvalidArgumentException"


def test_split_shard_outside_the_shard_range_is_invalid_argument(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=stream_name, ShardToSplit=sid(0), NewStartingHashKey=str(MAX_HASH))
    assert error_code(e) == "InvalidArgumentException"
    first_end = 2**127 - 1
    assert error_message(e) == (
        f"NewStartingHashKey {MAX_HASH} used in SplitShard() on shard {sid(0)} in stream "
        f"{stream_name} under account {ACCOUNT} is not both greater than one plus the shard's "
        f"StartingHashKey 0 and less than the shard's EndingHashKey {first_end}."
    )


def test_splitting_a_missing_shard_is_resource_not_found(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=stream, ShardToSplit=sid(9), NewStartingHashKey=str(MID))
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == (
        f"Could not find shard {sid(9)} in stream {stream} under account {ACCOUNT}."
    )


def test_splitting_a_closed_shard_is_refused(kinesis, split_stream):
    name, _ = split_stream
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=sid(0), NewStartingHashKey=str(2**64))
    assert error_code(e) in ("InvalidArgumentException", "ResourceInUseException", "ResourceNotFoundException")


def test_merge_shards_creates_one_child_with_both_parents_and_the_union_range(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    kinesis.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k", ExplicitHashKey="0")
    kinesis.merge_shards(StreamName=stream_name, ShardToMerge=sid(0), AdjacentShardToMerge=sid(1))
    wait_active(kinesis, stream_name)
    shards = shards_of(kinesis, stream_name)
    assert set(shards) == {sid(0), sid(1), sid(2)}
    child = shards[sid(2)]
    assert child["ParentShardId"] == sid(0)
    assert child["AdjacentParentShardId"] == sid(1)
    assert hash_range(child) == (0, MAX_HASH)
    for p in (sid(0), sid(1)):
        assert shards[p]["SequenceNumberRange"]["EndingSequenceNumber"].isdigit()
    r = kinesis.put_record(StreamName=stream_name, Data=b"y", PartitionKey="anything")
    assert r["ShardId"] == sid(2)
    # The end of a merged parent names the child, with both parents.
    it = kinesis.get_shard_iterator(
        StreamName=stream_name, ShardId=sid(0), ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    for _ in range(10):
        g = kinesis.get_records(ShardIterator=it)
        if "NextShardIterator" not in g:
            break
        it = g["NextShardIterator"]
    assert [c["ShardId"] for c in g["ChildShards"]] == [sid(2)]
    assert sorted(g["ChildShards"][0]["ParentShards"]) == [sid(0), sid(1)]


def test_merging_shards_that_are_not_adjacent_is_invalid_argument(kinesis, stream_name):
    create_stream(kinesis, stream_name, 3)
    with pytest.raises(ClientError) as e:
        kinesis.merge_shards(StreamName=stream_name, ShardToMerge=sid(0), AdjacentShardToMerge=sid(2))
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        f"Shards {sid(0)} and {sid(2)} in stream {stream_name} under account {ACCOUNT} are not "
        "an adjacent pair of shards eligible for merging"
    )


def test_update_shard_count_reshards_uniformly(kinesis, stream_name):
    create_stream(kinesis, stream_name, 2)
    r = kinesis.update_shard_count(
        StreamName=stream_name, TargetShardCount=4, ScalingType="UNIFORM_SCALING"
    )
    assert r["StreamName"] == stream_name
    assert r["CurrentShardCount"] == 2
    assert r["TargetShardCount"] == 4
    assert r["StreamARN"].endswith(f":stream/{stream_name}")
    wait_active(kinesis, stream_name)
    open_shards = kinesis.list_shards(StreamName=stream_name, ShardFilter={"Type": "AT_LATEST"})[
        "Shards"
    ]
    ranges = sorted(hash_range(s) for s in open_shards)
    assert len(ranges) == 4
    assert ranges[0][0] == 0 and ranges[-1][1] == MAX_HASH
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        assert b0 == a1 + 1
    # Uniform: every range has the same width, give or take one.
    widths = {e - s for s, e in ranges}
    assert max(widths) - min(widths) <= 1
    assert (
        kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
            "OpenShardCount"
        ]
        == 4
    )


def test_update_shard_count_can_scale_down(kinesis, stream_name):
    create_stream(kinesis, stream_name, 4)
    kinesis.update_shard_count(StreamName=stream_name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    wait_active(kinesis, stream_name)
    s = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert s["OpenShardCount"] == 2


def test_update_shard_count_refuses_more_than_double_with_limits_on(limited_kinesis, stream_name):
    create_stream(limited_kinesis, stream_name, 1)
    with pytest.raises(ClientError) as e:
        limited_kinesis.update_shard_count(
            StreamName=stream_name, TargetShardCount=3, ScalingType="UNIFORM_SCALING"
        )
    assert error_code(e) in ("LimitExceededException", "InvalidArgumentException")
    assert "cannot scale up over double your current open shard count" in error_message(e)


def test_update_stream_mode_switches_between_provisioned_and_on_demand(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, stream)
    s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    d = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    assert d["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    wait_active(kinesis, stream)
    s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}


def test_a_list_shards_next_token_expires_after_five_minutes(clock_kinesis, clock_server, stream_name):
    create_stream(clock_kinesis, stream_name, 3)
    token = clock_kinesis.list_shards(StreamName=stream_name, MaxResults=1)["NextToken"]
    assert clock_kinesis.list_shards(NextToken=token, MaxResults=1)["Shards"][0]["ShardId"] == sid(1)
    clock_server.advance_clock(6 * 60 * 1000)
    with pytest.raises(ClientError) as e:
        clock_kinesis.list_shards(NextToken=token, MaxResults=1)
    assert error_code(e) == "ExpiredNextTokenException"


def test_a_latest_iterator_on_a_closed_shard_ends_at_once_with_child_shards(kinesis, split_stream):
    name, _ = split_stream
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=sid(0), ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == []
    assert "NextShardIterator" not in r
    assert sorted(c["ShardId"] for c in r["ChildShards"]) == [sid(1), sid(2)]
