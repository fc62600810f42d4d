"""The S3 uploader against the SeaweedFS gateway: keys from ids only, content types, presigned
links, and failures that name the bucket but never the secret. (The key layout itself:
test_keys.py.)"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from gpu_daemon.uploader import S3Uploader, UploadError
from storyboard_contract.config import S3Config
from storyboard_contract.s3 import make_client


@pytest.fixture()
def s3_cfg(s3_server) -> S3Config:
    return S3Config(endpoint=s3_server.endpoint, bucket=s3_server.bucket,
                    access_key=s3_server.access_key, secret_key=s3_server.secret_key,
                    link_expiry=600, prefix="team/projects")


def test_uploads_carry_content_types_and_presigned_links(s3_server, s3_cfg):
    uploader = S3Uploader(s3_cfg)
    shot = uploader.upload_png(3, 14, "t-1", b"\x89PNG fake bytes")
    script = uploader.upload_script(3, "t-1", '{"shots": ["镜头"]}'.encode())
    assert (shot.key, script.key) == ("team/projects/3/shots/14/t-1.png",
                                      "team/projects/3/scripts/t-1.json")
    client = s3_server.client()
    assert client.head_object(Bucket=s3_server.bucket, Key=shot.key)["ContentType"] == "image/png"
    got = httpx.get(script.url)
    assert got.status_code == 200 and got.json() == {"shots": ["镜头"]}
    assert got.headers["content-type"].startswith("application/json")
    assert "X-Amz-Expires=600" in shot.url
    assert httpx.get(shot.url).content == b"\x89PNG fake bytes"


def test_an_unknown_access_key_is_a_502_naming_the_bucket(s3_cfg):
    # (A missing bucket cannot be shown here: SeaweedFS creates it on an admin's first PUT.)
    cfg = dataclasses.replace(s3_cfg, access_key="AKNOBODY")
    with pytest.raises(UploadError) as err:
        S3Uploader(cfg).upload_png(1, 1, "t", b"x")
    assert err.value.status == 502
    assert f"upload to bucket {s3_cfg.bucket!r} at {s3_cfg.endpoint} refused" in str(err.value)


def test_a_wrong_secret_is_a_502_that_does_not_leak_it(s3_cfg):
    cfg = dataclasses.replace(s3_cfg, secret_key="wrong-secret-value-123")
    with pytest.raises(UploadError) as err:
        S3Uploader(cfg).upload_png(1, 1, "t", b"x")
    assert err.value.status == 502
    assert s3_cfg.bucket in str(err.value)
    assert "wrong-secret-value-123" not in str(err.value)
    assert s3_cfg.secret_key not in str(err.value)


def test_an_unreachable_endpoint_is_a_503(s3_cfg):
    from storyboard_cli.stack.processes import free_port

    cfg = dataclasses.replace(s3_cfg, endpoint=f"http://127.0.0.1:{free_port()}")
    client = make_client(cfg.endpoint, cfg.access_key, cfg.secret_key, cfg.region, "path",
                         connect_timeout=1, max_attempts=1)
    with pytest.raises(UploadError) as err:
        S3Uploader(cfg, client=client).upload_script(1, "t", b"{}")
    assert err.value.status == 503
    assert f"bucket {cfg.bucket!r} at {cfg.endpoint}" in str(err.value)
