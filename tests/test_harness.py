"""The harness's services are real: Redis keeps AOF data across a restart, S3 checks signatures."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_redis_restart_keeps_data_with_aof(redis_server, redis_url):
    redis_server.client().set("survives", "yes")
    redis_server.restart()
    assert redis_server.client().get("survives") == b"yes"


def test_s3_presigned_get_works_and_unsigned_or_tampered_is_refused(s3_server):
    client = s3_server.client()
    client.put_object(Bucket=s3_server.bucket, Key="t/hello.txt", Body=b"hello")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_server.bucket, "Key": "t/hello.txt"}, ExpiresIn=60
    )
    assert fetch(url) == (200, b"hello")
    assert fetch(url.split("?")[0])[0] == 403
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert fetch(tampered)[0] == 403


def test_s3_rejects_wrong_secret(s3_server):
    from storyboard_contract.s3 import make_client

    bad = make_client(s3_server.endpoint, s3_server.access_key, "wrong", "us-east-1", "path")
    with pytest.raises(Exception, match="SignatureDoesNotMatch|AccessDenied|403"):
        bad.put_object(Bucket=s3_server.bucket, Key="t/x", Body=b"x")
