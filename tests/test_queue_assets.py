"""queue/: a redis.conf that really starts a durable Redis, and no importable Python (a package
named `queue` would shadow the standard library module RQ and urllib3 import)."""

from __future__ import annotations

from pathlib import Path

from storyboard_cli.stack import processes

QUEUE_DIR = Path(__file__).resolve().parent.parent / "queue"


def test_queue_dir_holds_no_python():
    assert not [p for p in QUEUE_DIR.rglob("*") if p.suffix in (".py", ".pyc")]


def test_redis_conf_starts_a_redis_with_aof_everysec_and_no_eviction_on_loopback(tmp_path):
    import redis

    port = processes.free_port()
    proc = processes.Process(
        "redis", [processes.find_binary("redis-server"), str(QUEUE_DIR / "redis.conf"),
                  "--port", str(port), "--dir", str(tmp_path)], tmp_path / "redis.log",
    ).start()
    try:
        assert processes.wait_until(lambda: processes.port_open(port), 10), proc.log_tail()
        conn = redis.Redis(port=port)
        settings = {k: conn.config_get(k)[k] for k in
                    ("appendonly", "appendfsync", "maxmemory-policy", "bind", "save")}
        assert settings == {"appendonly": "yes", "appendfsync": "everysec",
                            "maxmemory-policy": "noeviction", "bind": "127.0.0.1", "save": ""}
        conn.set("k", "v")
    finally:
        proc.stop()
    assert list(tmp_path.glob("appendonlydir/*.aof"))


def test_the_redis_unit_runs_the_command_the_guides_give_without_systemd():
    unit = (QUEUE_DIR / "storyboard-redis.service").read_text()
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines()
                    if line.startswith("ExecStart=")]
    assert exec_start == ("/usr/bin/redis-server /srv/storyboard/queue/redis.conf "
                          "--dir /var/lib/storyboard/redis")
    assert "StateDirectory=storyboard/redis" in unit  # systemd creates that --dir
    command = "redis-server queue/redis.conf --dir /var/lib/storyboard/redis"
    for guide in (QUEUE_DIR / "README.md", QUEUE_DIR.parent / "frp" / "README.md"):
        assert command in guide.read_text(), guide
