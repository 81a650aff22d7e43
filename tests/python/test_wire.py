"""The wire protocol, spoken by hand: AWS JSON 1.1 and CBOR 1.1, errors, headers."""

import base64
import json
import time

import cbor2
import pytest
import requests

from conftest import ACCOUNT, unique

JSON = "application/x-amz-json-1.1"
CBOR = "application/x-amz-cbor-1.1"


def call(server, op, body, content_type=JSON, target_prefix="Kinesis_20131202.", raw=None):
    headers = {"Content-Type": content_type}
    if op is not None:
        headers["X-Amz-Target"] = target_prefix + op
    if raw is None:
        raw = cbor2.dumps(body) if content_type == CBOR else json.dumps(body).encode()
    return requests.post(server.url + "/", data=raw, headers=headers, timeout=30)


def cbor_loads(data):
    # Keep tag 1 (timestamps) raw: AWS's CBOR uses epoch milliseconds in it, not seconds.
    return cbor2.loads(data, semantic_decoders={1: lambda v, _imm: cbor2.CBORTag(1, v)})


def assert_error(r, code, status=400):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["__type"] == code
    return body


def make_stream(server, shards=1):
    name = unique("wire")
    r = call(server, "CreateStream", {"StreamName": name, "ShardCount": shards})
    assert r.status_code == 200, r.text
    return name


def test_a_json_request_gets_a_json_response_with_a_request_id(server):
    r = call(server, "ListStreams", {})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(JSON)
    assert r.headers.get("x-amzn-RequestId")
    body = r.json()
    assert isinstance(body["StreamNames"], list)
    assert isinstance(body["HasMoreStreams"], bool)


def test_request_ids_are_unique_per_request(server):
    ids = {call(server, "ListStreams", {}).headers["x-amzn-RequestId"] for _ in range(5)}
    assert len(ids) == 5


def test_operations_without_output_return_200_and_an_empty_body(server):
    name = unique("wire")
    r = call(server, "CreateStream", {"StreamName": name, "ShardCount": 1})
    assert r.status_code == 200
    assert r.content == b""
    r = call(server, "AddTagsToStream", {"StreamName": name, "Tags": {"a": "b"}})
    assert r.status_code == 200
    assert r.content == b""


def test_errors_are_400_with_type_and_message_and_a_request_id(server):
    name = unique("nope")
    r = call(server, "DescribeStream", {"StreamName": name})
    body = assert_error(r, "ResourceNotFoundException")
    assert body["message"] == f"Stream {name} under account {ACCOUNT} not found."
    assert r.headers.get("x-amzn-RequestId")
    assert r.headers["Content-Type"].startswith(JSON)


def test_data_is_base64_in_json_and_timestamps_are_epoch_seconds(server):
    name = make_stream(server)
    payload = bytes(range(256))
    before = time.time()
    r = call(
        server,
        "PutRecord",
        {"StreamName": name, "PartitionKey": "k", "Data": base64.b64encode(payload).decode()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["ShardId"] == "shardId-000000000000"
    it = call(
        server,
        "GetShardIterator",
        {"StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"},
    ).json()["ShardIterator"]
    rec = call(server, "GetRecords", {"ShardIterator": it}).json()["Records"][0]
    assert base64.b64decode(rec["Data"]) == payload
    ts = rec["ApproximateArrivalTimestamp"]
    assert isinstance(ts, (int, float))
    assert before - 5 < ts < time.time() + 5


def test_a_json_timestamp_input_is_read_as_epoch_seconds(server):
    name = make_stream(server)
    call(server, "PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": "AA=="})
    r = call(
        server,
        "GetShardIterator",
        {
            "StreamName": name,
            "ShardId": "shardId-000000000000",
            "ShardIteratorType": "AT_TIMESTAMP",
            "Timestamp": time.time() - 60,
        },
    )
    assert r.status_code == 200, r.text
    recs = call(server, "GetRecords", {"ShardIterator": r.json()["ShardIterator"]}).json()["Records"]
    assert len(recs) == 1


def test_cbor_requests_get_cbor_responses_with_raw_bytes_and_millisecond_timestamps(server):
    name = unique("cbor")
    r = call(server, "CreateStream", {"StreamName": name, "ShardCount": 1}, content_type=CBOR)
    assert r.status_code == 200, r.content
    payload = bytes(range(256)) * 4
    before_ms = int(time.time() * 1000)
    r = call(
        server,
        "PutRecord",
        {"StreamName": name, "PartitionKey": "k", "Data": payload},
        content_type=CBOR,
    )
    assert r.status_code == 200, r.content
    assert r.headers["Content-Type"].startswith(CBOR)
    put = cbor_loads(r.content)
    assert put["ShardId"] == "shardId-000000000000"
    r = call(
        server,
        "GetShardIterator",
        {"StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"},
        content_type=CBOR,
    )
    it = cbor_loads(r.content)["ShardIterator"]
    r = call(server, "GetRecords", {"ShardIterator": it}, content_type=CBOR)
    assert r.status_code == 200
    out = cbor_loads(r.content)
    rec = out["Records"][0]
    assert rec["Data"] == payload  # a CBOR byte string, not base64
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    ts = rec["ApproximateArrivalTimestamp"]
    assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1
    assert before_ms - 5000 <= ts.value <= int(time.time() * 1000) + 5000
    assert out["MillisBehindLatest"] == 0


def test_a_cbor_timestamp_input_in_epoch_milliseconds_is_understood(server):
    name = unique("cbor")
    call(server, "CreateStream", {"StreamName": name, "ShardCount": 1}, content_type=CBOR)
    call(server, "PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": b"x"}, content_type=CBOR)
    time.sleep(0.2)
    mark_ms = int(time.time() * 1000)
    time.sleep(0.2)
    call(server, "PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": b"y"}, content_type=CBOR)
    r = call(
        server,
        "GetShardIterator",
        {
            "StreamName": name,
            "ShardId": "shardId-000000000000",
            "ShardIteratorType": "AT_TIMESTAMP",
            "Timestamp": cbor2.CBORTag(1, mark_ms),
        },
        content_type=CBOR,
    )
    assert r.status_code == 200, r.content
    it = cbor_loads(r.content)["ShardIterator"]
    recs = cbor_loads(call(server, "GetRecords", {"ShardIterator": it}, content_type=CBOR).content)[
        "Records"
    ]
    assert [x["Data"] for x in recs] == [b"y"]


def test_cbor_errors_are_cbor_maps_with_type_and_message(server):
    name = unique("nope")
    r = call(server, "DescribeStream", {"StreamName": name}, content_type=CBOR)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith(CBOR)
    body = cbor_loads(r.content)
    assert body["__type"] == "ResourceNotFoundException"
    assert body["message"] == f"Stream {name} under account {ACCOUNT} not found."


def test_a_cbor_stream_description_has_millisecond_creation_timestamp(server):
    name = unique("cbor")
    call(server, "CreateStream", {"StreamName": name, "ShardCount": 1}, content_type=CBOR)
    r = call(server, "DescribeStreamSummary", {"StreamName": name}, content_type=CBOR)
    ts = cbor_loads(r.content)["StreamDescriptionSummary"]["StreamCreationTimestamp"]
    assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1
    assert abs(ts.value - time.time() * 1000) < 60_000


def test_malformed_cbor_is_a_serialization_exception(server):
    r = call(server, "ListStreams", None, content_type=CBOR, raw=b"\xff\xff\x00garbage")
    assert r.status_code == 400
    body = cbor_loads(r.content) if r.headers["Content-Type"].startswith(CBOR) else r.json()
    assert body["__type"] == "SerializationException"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"1", b"null", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_serialization_exception(server, raw):
    r = call(server, "ListStreams", None, raw=raw)
    assert_error(r, "SerializationException")


def test_an_empty_body_is_a_serialization_exception(server):
    r = call(server, "ListStreams", None, raw=b"")
    assert_error(r, "SerializationException")


def test_a_member_of_the_wrong_type_is_a_serialization_exception_naming_the_java_type(server):
    r = call(server, "CreateStream", {"StreamName": unique("t"), "ShardCount": "two"})
    body = assert_error(r, "SerializationException")
    msg = body.get("Message", body.get("message"))
    assert msg == "class java.lang.String can not be converted to an Integer"


def test_a_string_member_given_a_number_is_a_serialization_exception(server):
    r = call(server, "DescribeStream", {"StreamName": 12})
    body = assert_error(r, "SerializationException")
    msg = body.get("Message", body.get("message"))
    assert msg == (
        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ("abc", "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ("ab$=", "Invalid Base64 character: '$'"),
        ("+/+=", "Invalid last non-pad Base64 character dectected"),
    ],
    ids=["length", "character", "trailing-bits"],
)
def test_data_that_is_not_valid_base64_is_a_serialization_exception(server, data, message):
    name = make_stream(server)
    r = call(server, "PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": data})
    body = assert_error(r, "SerializationException")
    msg = body.get("Message", body.get("message"))
    assert msg == f"'{data}' can not be converted to a Blob: {message}"


def test_a_boolean_member_given_a_string_is_a_serialization_exception(server):
    r = call(server, "DeleteStream", {"StreamName": unique("b"), "EnforceConsumerDeletion": "yes"})
    body = assert_error(r, "SerializationException")
    assert body.get("Message", body.get("message")) == "'YES' can not be converted to an Boolean"


def test_a_list_member_given_a_string_is_a_serialization_exception(server):
    r = call(server, "PutRecords", {"StreamName": unique("b"), "Records": "nope"})
    body = assert_error(r, "SerializationException")
    assert body.get("Message", body.get("message")) == "Expected list or null"


def test_a_non_post_request_is_access_denied(server):
    r = requests.get(server.url + "/", timeout=10)
    assert r.status_code == 403
    assert "Unable to determine service/operation name to be authorized" in r.text


def test_unknown_members_and_null_members_are_ignored(server):
    name = unique("wire")
    r = call(
        server,
        "CreateStream",
        {"StreamName": name, "ShardCount": 1, "NotAMember": {"x": 1}, "Tags": None},
    )
    assert r.status_code == 200, r.text
    r = call(server, "DescribeStream", {"StreamName": name, "Limit": None})
    assert r.status_code == 200, r.text


def test_an_unknown_operation_is_unknown_operation_exception(server):
    r = call(server, "Frobnicate", {})
    assert_error(r, "UnknownOperationException")


def test_a_missing_target_is_unknown_operation_exception(server):
    r = call(server, None, {})
    assert_error(r, "UnknownOperationException")


def test_a_target_for_another_service_is_unknown_operation_exception(server):
    r = call(server, "ListStreams", {}, target_prefix="DynamoDB_20120810.")
    assert_error(r, "UnknownOperationException")


def test_an_unsupported_content_type_is_refused(server):
    r = call(server, "ListStreams", {}, content_type="text/plain")
    assert r.status_code == 404
    assert "UnknownOperationException" in r.text


def test_the_content_type_may_carry_a_charset_parameter(server):
    r = call(server, "ListStreams", {}, content_type=JSON + "; charset=utf-8")
    assert r.status_code == 200, r.text


def test_a_validation_error_has_the_coral_message_over_the_wire(server):
    r = call(server, "CreateStream", {"StreamName": "a" * 129, "ShardCount": 0})
    body = assert_error(r, "ValidationException")
    assert body["message"] == (
        "2 validation errors detected: "
        "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        f"Value '{'a' * 129}' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"
    )


def test_the_http_path_is_ignored(server):
    r = requests.post(
        server.url + "/some/other/path",
        data=b"{}",
        headers={"Content-Type": JSON, "X-Amz-Target": "Kinesis_20131202.ListStreams"},
        timeout=10,
    )
    assert r.status_code == 200
