"""SigV4 authentication when the server is given an auth file."""

import datetime
import json

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (
    AUTH_ACCOUNT,
    AUTH_KEY_ID,
    AUTH_SECRET,
    REGION,
    error_code,
    error_message,
    make_client,
    unique,
    wait_active,
)

JSON = "application/x-amz-json-1.1"


def signed_request(server, op, body, key=AUTH_KEY_ID, secret=AUTH_SECRET, when=None):
    data = json.dumps(body).encode()
    req = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=data,
        headers={"Content-Type": JSON, "X-Amz-Target": f"Kinesis_20131202.{op}"},
    )
    signer = SigV4Auth(Credentials(key, secret), "kinesis", REGION)
    if when is not None:
        # botocore takes the signing time from the clock; pin it for this request.
        import botocore.auth

        real = botocore.auth.datetime.datetime

        class Frozen(real):
            @classmethod
            def utcnow(cls):
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):
                return when if tz else when.replace(tzinfo=None)

        botocore.auth.datetime.datetime = Frozen
        try:
            signer.add_auth(req)
        finally:
            botocore.auth.datetime.datetime = real
    else:
        signer.add_auth(req)
    return req


def send(req, data=None):
    return requests.post(
        req.url, data=req.body if data is None else data, headers=dict(req.headers), timeout=10
    )


def test_a_correctly_signed_client_can_use_the_api(auth_server):
    k = make_client(auth_server.url, key=AUTH_KEY_ID, secret=AUTH_SECRET)
    name = unique("auth")
    k.create_stream(StreamName=name, ShardCount=1)
    s = wait_active(k, name)
    # The account comes from the credential's entry in the auth file.
    assert s["StreamARN"] == f"arn:aws:kinesis:{REGION}:{AUTH_ACCOUNT}:stream/{name}"
    k.put_record(StreamName=name, Data=b"signed", PartitionKey="k")
    it = k.get_shard_iterator(
        StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"signed"]


def test_not_found_messages_name_the_callers_account(auth_server):
    k = make_client(auth_server.url, key=AUTH_KEY_ID, secret=AUTH_SECRET)
    name = unique("none")
    with pytest.raises(ClientError) as e:
        k.describe_stream(StreamName=name)
    assert error_message(e) == f"Stream {name} under account {AUTH_ACCOUNT} not found."


def test_a_wrong_secret_key_is_an_invalid_signature(auth_server):
    k = make_client(auth_server.url, key=AUTH_KEY_ID, secret="not-the-secret")
    with pytest.raises(ClientError) as e:
        k.list_streams()
    assert error_code(e) == "InvalidSignatureException"
    assert error_message(e).startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_an_unknown_access_key_is_an_unrecognized_client(auth_server):
    k = make_client(auth_server.url, key="AKIDUNKNOWN", secret=AUTH_SECRET)
    with pytest.raises(ClientError) as e:
        k.list_streams()
    assert error_code(e) == "UnrecognizedClientException"
    assert error_message(e) == "The security token included in the request is invalid."


def test_an_unsigned_request_is_missing_authentication_token(auth_server):
    r = requests.post(
        auth_server.url + "/",
        data=b"{}",
        headers={"Content-Type": JSON, "X-Amz-Target": "Kinesis_20131202.ListStreams"},
        timeout=10,
    )
    assert r.status_code in (400, 403)
    body = r.json()
    assert body["__type"] == "MissingAuthenticationTokenException"
    assert body["message"] == "Missing Authentication Token"
    assert r.headers.get("x-amzn-RequestId")


def test_an_authorization_header_without_its_parts_is_an_incomplete_signature(auth_server):
    r = requests.post(
        auth_server.url + "/",
        data=b"{}",
        headers={
            "Content-Type": JSON,
            "X-Amz-Target": "Kinesis_20131202.ListStreams",
            "Authorization": "AWS4-HMAC-SHA256 Credential=abc",
            "X-Amz-Date": "20240101T000000Z",
        },
        timeout=10,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["__type"] == "IncompleteSignatureException"
    assert "Authorization header requires 'Signature' parameter." in body["message"]
    assert "Authorization header requires 'SignedHeaders' parameter." in body["message"]


def test_a_body_changed_after_signing_is_an_invalid_signature(auth_server):
    req = signed_request(auth_server, "ListStreams", {})
    r = send(req, data=json.dumps({"Limit": 1}).encode())
    assert r.status_code == 400
    assert r.json()["__type"] == "InvalidSignatureException"


def test_a_hand_signed_request_is_accepted(auth_server):
    r = send(signed_request(auth_server, "ListStreams", {}))
    assert r.status_code == 200, r.text
    assert "StreamNames" in r.json()


def test_a_signature_older_than_five_minutes_is_refused(auth_server):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    r = send(signed_request(auth_server, "ListStreams", {}, when=old))
    assert r.status_code == 400
    body = r.json()
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith("Signature expired:")


def test_the_open_server_accepts_any_credentials(kinesis, server):
    other = make_client(server.url, key="ANYTHING", secret="whatever")
    assert "StreamNames" in other.list_streams()
