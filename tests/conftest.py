"""Test harness: real services on free ports, torn down by pid.

- ``redis_server``: a redis-server with AOF that a test can restart (``.restart()``) or kill
  (``.kill()``, then ``.start()`` again on its data).
- ``s3_server``: SeaweedFS's S3 gateway with credentials enforced and a bucket created.
- ``config_file`` / ``cli``: an isolated storyboard.toml and a click runner for the CLI.

HF_HUB_OFFLINE is set before anything can import huggingface_hub (it is read at import).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import secrets  # noqa: E402
import signal  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from storyboard_cli.stack import processes  # noqa: E402

# Fixture modules of each tier (tests/fixtures_*.py); add yours here.
pytest_plugins: list[str] = ["fixtures_daemon", "fixtures_queue", "fixtures_llm", "fixtures_stack",
                             "fixtures_serve"]

# Secrets from the developer's shell or a .env must not leak into tests.
for _var in ("STORYBOARD_CONFIG", "ACCESS_KEY", "SECRET_KEY", "ENDPOINT", "TOS_BUCKET",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
             "STORYBOARD_DAEMON_TOKEN", "OPENAI_API_KEY"):
    os.environ.pop(_var, None)


class RedisServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = processes.free_port()
        self.proc: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)

        def make() -> processes.Process:
            return processes.Process(
                "redis", processes.redis_argv(self.port, self.data_dir), self.data_dir / "redis.log"
            )

        self.proc = processes.start_with_retry(
            make, lambda p: processes.port_open(self.port), timeout=10
        )
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: Redis dies at once, keeping only what its AOF already holds (everysec)."""
        if self.proc:
            self.proc.stop(sig=signal.SIGKILL)
            self.proc = None

    def restart(self) -> None:
        """Stop (SIGTERM: AOF flushed) and start again on the same port and data."""
        self.stop()
        self.start()

    def client(self):  # -> redis.Redis
        import redis

        return redis.Redis.from_url(self.url)


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    proc: processes.Process

    def client(self):  # -> boto3 S3 client
        from storyboard_contract.s3 import make_client

        return make_client(self.endpoint, self.access_key, self.secret_key, "us-east-1", "path")

    def env(self) -> dict[str, str]:
        """The environment a storyboard process needs to reach this bucket."""
        return {
            "ACCESS_KEY": self.access_key,
            "SECRET_KEY": self.secret_key,
            "ENDPOINT": self.endpoint,
            "TOS_BUCKET": self.bucket,
        }


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the session's Redis for each test."""
    if not (redis_server.proc and redis_server.proc.alive()):
        redis_server.start()
    redis_server.client().flushdb()
    return redis_server.url


def start_s3(data_dir: Path, bucket: str = "storyboard-test") -> S3Server:
    access_key, secret_key = "sb" + secrets.token_hex(8), secrets.token_hex(20)
    identities = processes.write_s3_identities(data_dir / "identities.json", access_key, secret_key)
    holder: dict[str, processes.SeaweedPorts] = {}

    def make() -> processes.Process:
        holder["ports"] = processes.SeaweedPorts.pick()
        return processes.Process(
            "seaweedfs",
            processes.seaweed_argv(data_dir / "data", holder["ports"], identities),
            data_dir / "weed.log",
            env=processes.seaweed_env(),
        )

    proc = processes.start_with_retry(
        make,
        lambda p: processes.http_ok(f"http://127.0.0.1:{holder['ports'].s3}/healthz"),
        timeout=20,
    )
    endpoint = f"http://127.0.0.1:{holder['ports'].s3}"
    processes.ensure_bucket(endpoint, access_key, secret_key, bucket)
    return S3Server(endpoint, access_key, secret_key, bucket, proc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.proc.stop()


@pytest.fixture()
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated storyboard.toml (store in tmp_path) used by every command in the test."""
    path = tmp_path / "storyboard.toml"
    path.write_text('[store]\npath = "storyboard.db"\n', encoding="utf-8")
    monkeypatch.setenv("STORYBOARD_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture()
def cli(config_file: Path):
    """Invoke the CLI in-process: cli("new", "story.txt", "--json") -> click Result.

    result.stdout and result.stderr are apart (click >= 8.2); result.output is both.
    """
    from click.testing import CliRunner

    from storyboard_cli.cli import cli as group

    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None):
        return runner.invoke(group, list(args), input=input, catch_exceptions=False)

    return invoke
