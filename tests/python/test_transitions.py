"""State transitions with delays: CREATING, UPDATING and DELETING last as long as configured,
for streams and for enhanced fan-out consumers, as they do on AWS."""

import time

import pytest
from botocore.exceptions import ClientError

from conftest import Server, error_code, make_client, unique

DELAY_MS = 400


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    s = Server(
        "--no-limits",
        "--create-delay-ms", str(DELAY_MS),
        "--delete-delay-ms", str(DELAY_MS),
        "--update-delay-ms", str(DELAY_MS),
        name="slow",
        tmp_path=tmp_path_factory.mktemp("slow"),
    )
    yield s
    s.stop()


def wait_for(fn, want, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"still {got!r}, wanted {want!r}")


def test_a_stream_is_creating_then_active_and_updating_during_a_reshard(slow):
    k = make_client(slow.url)
    name = unique("slow")
    k.create_stream(StreamName=name, ShardCount=1)
    status = lambda: k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
    assert status() == "CREATING"
    # While CREATING, data calls see no stream and DescribeStream lists no shards.
    assert k.describe_stream(StreamName=name)["StreamDescription"]["Shards"] == []
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=name, PartitionKey="k", Data=b"x")
    assert error_code(e) == "ResourceNotFoundException"
    wait_for(status, "ACTIVE")
    k.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert status() == "UPDATING"
    # Writes go on while UPDATING; a second reshard is refused until ACTIVE again.
    k.put_record(StreamName=name, PartitionKey="k", Data=b"x")
    with pytest.raises(ClientError) as e:
        k.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert error_code(e) == "ResourceInUseException"
    wait_for(status, "ACTIVE")
    k.delete_stream(StreamName=name)
    assert status() == "DELETING"

    def gone():
        try:
            k.describe_stream_summary(StreamName=name)
            return False
        except ClientError as err:
            return err.response["Error"]["Code"] == "ResourceNotFoundException"

    wait_for(gone, True)


def test_a_consumer_is_creating_then_active_and_deleting_when_deregistered(slow):
    k = make_client(slow.url)
    name = unique("slowc")
    k.create_stream(StreamName=name, ShardCount=1)
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    wait_for(lambda: k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE")
    consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]
    assert consumer["ConsumerStatus"] == "CREATING"
    status = lambda: k.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"]
    assert status() == "CREATING"
    with pytest.raises(ClientError) as e:
        k.subscribe_to_shard(
            ConsumerARN=consumer["ConsumerARN"],
            ShardId="shardId-000000000000",
            StartingPosition={"Type": "LATEST"},
        )
    assert error_code(e) == "ResourceInUseException"
    wait_for(status, "ACTIVE")
    k.deregister_stream_consumer(ConsumerARN=consumer["ConsumerARN"])
    assert status() == "DELETING"

    def gone():
        return k.list_stream_consumers(StreamARN=arn)["Consumers"] == []

    wait_for(gone, True)
