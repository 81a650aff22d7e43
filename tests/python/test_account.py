"""Account settings, resource policies and warm throughput (the 2025 additions to the API).

Account settings are account-wide, so these tests use a server private to this module.
"""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import create_stream, error_code

HOUR_MS = 3600 * 1000

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kinesis:GetRecords",
                "Resource": "*",
            }
        ],
    }
)


def test_the_billing_commitment_is_disabled_until_enabled_and_lasts_at_least_a_day(
    clock_kinesis, clock_server
):
    k = clock_kinesis
    before = k.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert before["Status"] == "DISABLED"
    enabled = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    c = enabled["MinimumThroughputBillingCommitment"]
    assert c["Status"] == "ENABLED"
    assert (c["EarliestAllowedEndAt"] - c["StartedAt"]).total_seconds() == 24 * 3600
    # Disabling before the earliest end keeps it on until then.
    early = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})
    assert early["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    clock_server.advance_clock(25 * HOUR_MS)
    after = k.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert after["Status"] == "DISABLED"
    assert "EndedAt" in after


def test_an_unknown_commitment_status_is_a_validation_error(clock_kinesis):
    with pytest.raises(ClientError) as e:
        clock_kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "MAYBE"})
    assert error_code(e) == "ValidationException"


def test_resource_policies_attach_to_streams_and_consumers(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    assert json.loads(kinesis.get_resource_policy(ResourceARN=arn)["Policy"]) == {}
    kinesis.put_resource_policy(ResourceARN=arn, Policy=POLICY)
    assert json.loads(kinesis.get_resource_policy(ResourceARN=arn)["Policy"]) == json.loads(POLICY)
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="pol")["Consumer"]
    kinesis.put_resource_policy(ResourceARN=consumer["ConsumerARN"], Policy=POLICY)
    assert kinesis.get_resource_policy(ResourceARN=consumer["ConsumerARN"])["Policy"] == POLICY
    kinesis.delete_resource_policy(ResourceARN=arn)
    assert json.loads(kinesis.get_resource_policy(ResourceARN=arn)["Policy"]) == {}
    with pytest.raises(ClientError) as e:
        kinesis.delete_resource_policy(ResourceARN=arn)
    assert error_code(e) == "ResourceNotFoundException"


def test_a_policy_that_is_not_json_is_invalid_argument(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    with pytest.raises(ClientError) as e:
        kinesis.put_resource_policy(ResourceARN=arn, Policy="not json")
    assert error_code(e) == "InvalidArgumentException"


def test_a_policy_on_a_missing_stream_is_resource_not_found(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.get_resource_policy(ResourceARN="arn:aws:kinesis:us-east-1:000000000000:stream/none")
    assert error_code(e) == "ResourceNotFoundException"


def test_warm_throughput_grows_an_on_demand_stream_once_the_commitment_is_on(
    clock_kinesis, clock_server, stream_name
):
    k = clock_kinesis
    k.create_stream(StreamName=stream_name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})
    clock_server.advance_clock(25 * HOUR_MS)
    with pytest.raises(ClientError) as e:
        k.update_stream_warm_throughput(StreamName=stream_name, WarmThroughputMiBps=10)
    assert error_code(e) == "InvalidArgumentException"
    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    out = k.update_stream_warm_throughput(StreamName=stream_name, WarmThroughputMiBps=10)
    assert out["WarmThroughput"] == {"TargetMiBps": 10, "CurrentMiBps": 10}
    summary = k.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 10
    assert summary["WarmThroughput"]["CurrentMiBps"] == 10


def test_warm_throughput_is_refused_for_provisioned_streams(clock_kinesis, stream_name):
    create_stream(clock_kinesis, stream_name, 1)
    with pytest.raises(ClientError) as e:
        clock_kinesis.update_stream_warm_throughput(StreamName=stream_name, WarmThroughputMiBps=4)
    assert error_code(e) == "InvalidArgumentException"
