"""Self-hosted storage: SeaweedFS's S3 gateway as a long-running bucket server on the host.

`storyboard up` runs the same gateway for the local stack, bound to 127.0.0.1. On a host that
serves GPU boxes the gateway must listen where they (for uploads) and whoever opens a link (for
downloads) reach it: `storyboard bucket serve --addr 0.0.0.0`, with the credentials and bucket of
this configuration, in the foreground (for systemd or a terminal).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from storyboard_cli.stack import processes
from storyboard_contract.config import Config
from storyboard_contract.errors import ConfigError


@dataclass
class BucketServer:
    argv: list[str]
    env: dict[str, str]
    url: str  # where it listens, as the endpoint clients would use on this machine
    data_dir: Path


def bucket_server(cfg: Config, addr: str, port: int | None,
                  data_dir: Path | None) -> BucketServer:
    s3 = cfg.s3
    if not (s3.access_key and s3.secret_key):
        raise ConfigError("set ACCESS_KEY and SECRET_KEY in .env first: the bucket server "
                          "accepts exactly those credentials (e.g. openssl rand -hex 20 each)")
    port = port or urlsplit(s3.endpoint).port or cfg.stack.s3_port
    if port + 10000 >= 65536:
        raise ConfigError(f"port {port}: SeaweedFS needs port + 10000 for gRPC; use a lower one")
    data_dir = data_dir or cfg.state_dir / "bucket"
    identities = processes.write_s3_identities(data_dir / "identities.json", s3.access_key,
                                              s3.secret_key)
    # The other parts of weed get free ports of their own, all on addr as well: open only
    # the S3 port in the firewall.
    ports = replace(processes.SeaweedPorts.pick(), s3=port)
    argv = processes.seaweed_argv(data_dir / "data", ports, identities, bind=addr,
                                 buckets=(s3.bucket,))
    shown = "127.0.0.1" if addr in ("0.0.0.0", "") else addr
    return BucketServer(argv, processes.seaweed_env(), f"http://{shown}:{port}", data_dir)
