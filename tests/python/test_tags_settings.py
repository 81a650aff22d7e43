"""Tags, retention, limits, enhanced monitoring, encryption, maximum record size, consumers."""

import os
import re
import time

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT,
    create_stream,
    error_code,
    error_message,
    make_client,
    read_all,
    unique,
    wait_active,
)

SHARD0 = "shardId-000000000000"
ALL_METRICS = {
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
}


@pytest.fixture(scope="module")
def raw_kinesis(server):
    return make_client(server.url, parameter_validation=False)


def arn_of(kinesis, name):
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


# ---------------------------------------------------------------------------------------------
# Tags


def test_tags_added_to_a_stream_are_listed_sorted_by_key(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"team": "data", "env": "test", "cost": ""})
    r = kinesis.list_tags_for_stream(StreamName=stream)
    assert r["Tags"] == [
        {"Key": "cost", "Value": ""},
        {"Key": "env", "Value": "test"},
        {"Key": "team", "Value": "data"},
    ]
    assert r["HasMoreTags"] is False


def test_adding_an_existing_tag_key_overwrites_its_value(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"env": "dev"})
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"env": "prod"})
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_list_tags_for_stream_pages_with_limit_and_exclusive_start_tag_key(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={f"k{i}": str(i) for i in range(5)})
    p1 = kinesis.list_tags_for_stream(StreamName=stream, Limit=2)
    assert [t["Key"] for t in p1["Tags"]] == ["k0", "k1"]
    assert p1["HasMoreTags"] is True
    p2 = kinesis.list_tags_for_stream(StreamName=stream, Limit=2, ExclusiveStartTagKey="k1")
    assert [t["Key"] for t in p2["Tags"]] == ["k2", "k3"]
    p3 = kinesis.list_tags_for_stream(StreamName=stream, Limit=2, ExclusiveStartTagKey="k3")
    assert [t["Key"] for t in p3["Tags"]] == ["k4"]
    assert p3["HasMoreTags"] is False


def test_removed_tags_disappear_and_removing_unknown_keys_is_not_an_error(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"a": "1", "b": "2"})
    kinesis.remove_tags_from_stream(StreamName=stream, TagKeys=["a", "never-there"])
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_tags_given_at_creation_are_listed(kinesis, stream_name):
    create_stream(kinesis, stream_name, 1, Tags={"owner": "me"})
    assert kinesis.list_tags_for_stream(StreamName=stream_name)["Tags"] == [
        {"Key": "owner", "Value": "me"}
    ]


def test_a_stream_cannot_have_more_than_50_tags(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={f"k{i}": "v" for i in range(40)})
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=stream, Tags={f"x{i}": "v" for i in range(11)})
    assert error_code(e) in ("InvalidArgumentException", "LimitExceededException")
    assert len(kinesis.list_tags_for_stream(StreamName=stream)["Tags"]) == 40


def test_tags_with_invalid_characters_are_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=stream, Tags={"bad;key": "v"})
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Some tags contain invalid characters. Valid characters: "
        "Unicode letters, digits, white space, _ . / = + - % @."
    )
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == []


def test_tag_keys_with_the_reserved_aws_prefix_are_refused(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=stream, Tags={"aws:owner": "me"})
    assert error_code(e) == "InvalidArgumentException"


def test_tag_resource_and_list_tags_for_resource_work_on_the_stream_arn(kinesis, stream):
    arn = arn_of(kinesis, stream)
    kinesis.tag_resource(ResourceARN=arn, Tags={"project": "tributary", "tier": "gold"})
    got = kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in got) == [("project", "tributary"), ("tier", "gold")]
    # The same tags are the stream's tags.
    assert {t["Key"] for t in kinesis.list_tags_for_stream(StreamName=stream)["Tags"]} == {
        "project",
        "tier",
    }
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["tier"])
    got = kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert got == [{"Key": "project", "Value": "tributary"}]


def test_tag_resource_on_a_missing_stream_arn_is_resource_not_found(kinesis):
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{unique('none')}"
    with pytest.raises(ClientError) as e:
        kinesis.tag_resource(ResourceARN=arn, Tags={"a": "b"})
    assert error_code(e) == "ResourceNotFoundException"


# ---------------------------------------------------------------------------------------------
# Retention


def test_retention_can_be_increased_and_decreased_within_24_to_8760_hours(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=8760)
    s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert s["RetentionPeriodHours"] == 8760
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    assert kinesis.describe_stream(StreamName=stream)["StreamDescription"]["RetentionPeriodHours"] == 48
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=24)
    assert (
        kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "RetentionPeriodHours"
        ]
        == 24
    )


def test_retention_below_24_hours_is_too_short(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=23)
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."
    )


def test_retention_above_8760_hours_is_too_long(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=8761)
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."
    )


def test_increasing_retention_to_less_than_the_current_value_is_invalid_argument(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=72)
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        f"Requested retention period (48 hours) for stream {stream} can not be shorter than "
        "existing retention period (72 hours). Use DecreaseRetentionPeriod API."
    )


def test_decreasing_retention_to_more_than_the_current_value_is_invalid_argument(kinesis, stream):
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    assert error_code(e) == "InvalidArgumentException"
    assert error_message(e) == (
        f"Requested retention period (48 hours) for stream {stream} can not be longer than "
        "existing retention period (24 hours). Use IncreaseRetentionPeriod API."
    )


def test_setting_retention_to_its_current_value_is_accepted(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=24)
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=24)


# ---------------------------------------------------------------------------------------------
# DescribeLimits


def test_describe_limits_reports_open_shards_and_on_demand_streams(kinesis, stream_name):
    before = kinesis.describe_limits()
    for key in ("ShardLimit", "OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"):
        assert isinstance(before[key], int), key
    create_stream(kinesis, stream_name, 3)
    create_stream(kinesis, stream_name + "-od", None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    od_shards = kinesis.describe_stream_summary(StreamName=stream_name + "-od")[
        "StreamDescriptionSummary"
    ]["OpenShardCount"]
    after = kinesis.describe_limits()
    assert after["OpenShardCount"] == before["OpenShardCount"] + 3 + od_shards
    assert after["OnDemandStreamCount"] == before["OnDemandStreamCount"] + 1
    assert after["ShardLimit"] >= after["OpenShardCount"]


# ---------------------------------------------------------------------------------------------
# Enhanced monitoring


def test_enable_enhanced_monitoring_reports_current_and_desired_metrics(kinesis, stream):
    r = kinesis.enable_enhanced_monitoring(
        StreamName=stream, ShardLevelMetrics=["IncomingRecords", "IncomingBytes"]
    )
    assert r["StreamName"] == stream
    assert r["CurrentShardLevelMetrics"] == []
    assert set(r["DesiredShardLevelMetrics"]) == {"IncomingRecords", "IncomingBytes"}
    em = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["EnhancedMonitoring"]
    assert set(em[0]["ShardLevelMetrics"]) == {"IncomingRecords", "IncomingBytes"}
    r = kinesis.disable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["IncomingBytes"])
    assert set(r["CurrentShardLevelMetrics"]) == {"IncomingRecords", "IncomingBytes"}
    assert r["DesiredShardLevelMetrics"] == ["IncomingRecords"]
    em = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "EnhancedMonitoring"
    ]
    assert em[0]["ShardLevelMetrics"] == ["IncomingRecords"]


def test_enabling_all_metrics_expands_to_the_seven_shard_level_metrics(kinesis, stream):
    r = kinesis.enable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["ALL"])
    assert set(r["DesiredShardLevelMetrics"]) == ALL_METRICS
    r = kinesis.disable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["ALL"])
    assert r["DesiredShardLevelMetrics"] == []


def test_an_unknown_metric_name_is_a_validation_error(raw_kinesis, stream):
    with pytest.raises(ClientError) as e:
        raw_kinesis.enable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["Bogus"])
    assert error_code(e) == "ValidationException"


def metric_value(text, name, stream, shard):
    pat = re.compile(
        rf"^{name}\{{([^}}]*)\}} ([0-9.eE+-]+)$", re.MULTILINE
    )
    for labels, value in pat.findall(text):
        if f'stream="{stream}"' in labels and f'shard="{shard}"' in labels:
            return float(value)
    return None


def test_shard_level_metrics_appear_in_prometheus_once_enabled(kinesis, server, stream):
    kinesis.put_record(StreamName=stream, Data=b"before", PartitionKey="k")
    assert metric_value(server.metrics_text(), "kinesis_shard_incoming_records_total", stream, SHARD0) is None
    kinesis.enable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["ALL"])
    kinesis.put_records(
        StreamName=stream, Records=[{"Data": b"abc", "PartitionKey": "k"} for _ in range(3)]
    )
    text = server.metrics_text()
    v = metric_value(text, "kinesis_shard_incoming_records_total", stream, SHARD0)
    assert v is not None and v >= 3
    assert metric_value(text, "kinesis_shard_incoming_bytes_total", stream, SHARD0) >= 9
    # Once disabled, shard-level metrics stop being collected (like CloudWatch stops publishing).
    kinesis.disable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["ALL"])
    kinesis.put_record(StreamName=stream, Data=b"after", PartitionKey="k")
    after = metric_value(server.metrics_text(), "kinesis_shard_incoming_records_total", stream, SHARD0)
    assert after is None or after == v


def test_metrics_endpoint_serves_health_and_readiness(server):
    import requests

    assert requests.get(f"{server.metrics_url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{server.metrics_url}/readyz", timeout=5).status_code == 200
    r = requests.get(f"{server.metrics_url}/metrics", timeout=5)
    assert r.status_code == 200
    assert "text/plain" in r.headers["Content-Type"]


# ---------------------------------------------------------------------------------------------
# Encryption


def test_stream_encryption_is_reported_on_descriptions_and_records(kinesis, stream):
    kinesis.start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    wait_active(kinesis, stream)
    d = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    assert d["EncryptionType"] == "KMS"
    assert d["KeyId"] == "alias/aws/kinesis"
    s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert s["EncryptionType"] == "KMS"
    assert kinesis.put_record(StreamName=stream, Data=b"secret", PartitionKey="k")["EncryptionType"] == "KMS"
    assert (
        kinesis.put_records(StreamName=stream, Records=[{"Data": b"s2", "PartitionKey": "k"}])[
            "EncryptionType"
        ]
        == "KMS"
    )
    recs = read_all(kinesis, stream)
    assert [r["Data"] for r in recs] == [b"secret", b"s2"]
    assert all(r["EncryptionType"] == "KMS" for r in recs)
    kinesis.stop_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    wait_active(kinesis, stream)
    d = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    assert d["EncryptionType"] == "NONE"
    assert "KeyId" not in d
    assert kinesis.put_record(StreamName=stream, Data=b"plain", PartitionKey="k")["EncryptionType"] == "NONE"


def test_start_stream_encryption_on_a_missing_stream_is_resource_not_found(kinesis):
    name = unique("noenc")
    with pytest.raises(ClientError) as e:
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == f"Stream {name} under account {ACCOUNT} not found."


# ---------------------------------------------------------------------------------------------
# Maximum record size


def test_raising_the_max_record_size_lets_a_two_mebibyte_record_through(kinesis, stream):
    big = os.urandom(2 * 1024 * 1024)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=stream, Data=big, PartitionKey="k")
    assert error_code(e) in ("InvalidArgumentException", "ValidationException")
    arn = arn_of(kinesis, stream)
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10240)
    wait_active(kinesis, stream)
    s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert s.get("MaxRecordSizeInKiB") == 10240
    kinesis.put_record(StreamName=stream, Data=big, PartitionKey="k")
    assert read_all(kinesis, stream)[0]["Data"] == big


@pytest.mark.parametrize("size", [1023, 10241])
def test_a_max_record_size_outside_1024_to_10240_kib_is_a_validation_error(raw_kinesis, kinesis, stream, size):
    arn = arn_of(kinesis, stream)
    with pytest.raises(ClientError) as e:
        raw_kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=size)
    assert error_code(e) == "ValidationException"
    bound = "greater than or equal to 1024" if size < 1024 else "less than or equal to 10240"
    assert error_message(e) == (
        f"1 validation error detected: Value '{size}' at 'maxRecordSizeInKiB' failed to satisfy "
        f"constraint: Member must have value {bound}"
    )


# ---------------------------------------------------------------------------------------------
# Consumers


def test_a_registered_consumer_can_be_described_listed_and_deregistered(kinesis, stream):
    arn = arn_of(kinesis, stream)
    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]
    assert c["ConsumerName"] == "reader"
    assert re.fullmatch(re.escape(arn) + r"/consumer/reader:\d+", c["ConsumerARN"])
    assert c["ConsumerStatus"] in ("CREATING", "ACTIVE")
    deadline = time.time() + 10
    while True:
        d = kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="reader")[
            "ConsumerDescription"
        ]
        if d["ConsumerStatus"] == "ACTIVE" or time.time() > deadline:
            break
        time.sleep(0.05)
    assert d["ConsumerStatus"] == "ACTIVE"
    assert d["ConsumerARN"] == c["ConsumerARN"]
    assert d["StreamARN"] == arn
    by_arn = kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
    assert by_arn["ConsumerName"] == "reader"
    listed = kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
    assert [x["ConsumerName"] for x in listed] == ["reader"]
    kinesis.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
    deadline = time.time() + 10
    while kinesis.list_stream_consumers(StreamARN=arn)["Consumers"] and time.time() < deadline:
        time.sleep(0.05)
    assert kinesis.list_stream_consumers(StreamARN=arn)["Consumers"] == []
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="reader")
    assert error_code(e) == "ResourceNotFoundException"


def test_registering_the_same_consumer_name_twice_is_resource_in_use(kinesis, stream):
    arn = arn_of(kinesis, stream)
    kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="dup")
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="dup")
    assert error_code(e) == "ResourceInUseException"


def test_list_stream_consumers_pages_with_max_results(kinesis, stream):
    arn = arn_of(kinesis, stream)
    for n in ("c1", "c2", "c3"):
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=n)
    p = kinesis.list_stream_consumers(StreamARN=arn, MaxResults=2)
    names = [c["ConsumerName"] for c in p["Consumers"]]
    assert len(names) == 2
    p2 = kinesis.list_stream_consumers(StreamARN=arn, NextToken=p["NextToken"], MaxResults=2)
    names += [c["ConsumerName"] for c in p2["Consumers"]]
    assert sorted(names) == ["c1", "c2", "c3"]


def test_registering_a_consumer_on_a_missing_stream_is_resource_not_found(kinesis):
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{unique('nocons')}"
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c")
    assert error_code(e) == "ResourceNotFoundException"


def test_a_stream_allows_at_most_20_consumers(kinesis, stream):
    arn = arn_of(kinesis, stream)
    for i in range(20):
        try:
            kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=f"c{i}")
        except ClientError as e:
            # At most 5 may be CREATING at once; wait for them and retry.
            assert e.response["Error"]["Code"] == "LimitExceededException"
            time.sleep(0.5)
            kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=f"c{i}")
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="one-too-many")
    assert error_code(e) == "LimitExceededException"


def test_subscribe_to_shard_delivers_records_to_a_registered_consumer(kinesis, stream):
    arn = arn_of(kinesis, stream)
    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="efo")["Consumer"]
    deadline = time.time() + 10
    while (
        kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"][
            "ConsumerStatus"
        ]
        != "ACTIVE"
    ):
        assert time.time() < deadline
        time.sleep(0.05)
    sent = [bytes([i]) * (i + 1) for i in range(5)]
    for p in sent:
        kinesis.put_record(StreamName=stream, Data=p, PartitionKey="k")
    r = kinesis.subscribe_to_shard(
        ConsumerARN=c["ConsumerARN"], ShardId=SHARD0, StartingPosition={"Type": "TRIM_HORIZON"}
    )
    got = []
    stream_events = r["EventStream"]
    try:
        for event in stream_events:
            ev = event["SubscribeToShardEvent"]
            got += [x["Data"] for x in ev["Records"]]
            assert ev["ContinuationSequenceNumber"].isdigit()
            assert "MillisBehindLatest" in ev
            if len(got) >= len(sent):
                break
    finally:
        stream_events.close()
    assert got == sent
