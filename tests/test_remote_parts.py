"""The remote CLI's pure parts: reading an event stream, naming a server without its secrets,
reading an error answer back as the error the server raised, and the API's paths."""

from __future__ import annotations

import pytest

from storyboard_cli.remote import check_server_url, server_label, sse_events
from storyboard_cli.server import routes
from storyboard_cli.stack.frp import FrpError
from storyboard_cli.tasks.daemon_client import DaemonRejected, DaemonUnavailable
from storyboard_contract.errors import (
    ConfigError,
    NotFound,
    ServerFailed,
    ServiceUnavailable,
    UsageError,
    error_for_status,
    error_tree,
)


def test_an_event_stream_gives_each_event_with_its_data_and_skips_heartbeats():
    lines = ["event: progress", 'data: {"a": 1}', "", ": heartbeat", "",
             "data: first line", "data: second line", "", "event: task", "data: {}"]
    assert list(sse_events(lines)) == [
        ("progress", '{"a": 1}'), ("message", "first line\nsecond line"), ("task", "{}")]


@pytest.mark.parametrize("url, label", [
    ("https://writer:pw@storyboard.example.org/base?token=t", "https://storyboard.example.org"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_a_server_is_named_by_scheme_host_and_port_only(url, label):
    assert server_label(url) == label


@pytest.mark.parametrize("url", ["storyboard.example.org", "ftp://host", "http://", ""])
def test_a_server_address_must_be_an_http_url(url):
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        check_server_url(url)


def test_every_error_the_server_names_exits_the_same_through_the_remote_client():
    # The server answers an error with its class's HTTP status; the client raises the class
    # that status stands for, which must end the command with the exit code it has locally.
    named = [cls for cls in error_tree() if cls.http_status != ServerFailed.http_status]
    assert {ConfigError, NotFound, DaemonRejected, DaemonUnavailable, FrpError} <= set(named)
    for cls in named:
        read_back = error_for_status(cls.http_status)
        assert issubclass(cls, read_back) and read_back.exit_code == cls.exit_code, cls


@pytest.mark.parametrize("status, error", [
    (404, NotFound), (422, UsageError), (400, UsageError), (413, UsageError),
    (503, ServiceUnavailable), (502, ServiceUnavailable), (504, ServiceUnavailable),
    (500, ServerFailed), (418, ServerFailed),
])
def test_an_http_status_reads_back_as_its_error(status, error):
    assert error_for_status(status) is error


def test_a_reference_travels_as_one_encoded_segment_of_the_route_the_server_declares():
    assert routes.api_path(routes.CAST, project="a/b c") == "/api/projects/a%2Fb%20c/cast"
    assert routes.api_path(routes.GENERATE_SHOT, shot="lighthouse/3") == (
        "/api/shots/lighthouse%2F3/generate")
    assert routes.api_path(routes.TASKS) == "/api/tasks"
