"""The remote CLI's pure parts: reading an event stream, naming a server without its secrets."""

from __future__ import annotations

import pytest

from storyboard_cli.remote import check_server_url, server_label, sse_events
from storyboard_contract.errors import ConfigError


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
