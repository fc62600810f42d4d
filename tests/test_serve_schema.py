"""schemathesis (from PyPI) against `storyboard serve`'s /openapi.json: a bounded number of
generated requests per operation, each answered without a server error (no 5xx) and, when
refused, with the one-line {"error": ...} of every refusal. A server of its own over a fresh
store (generated requests rename and remove projects), with one project to find."""

from __future__ import annotations

import secrets

import pytest
import schemathesis
from fixtures_queue import write_stack
from fixtures_serve import start_serve
from hypothesis import HealthCheck, given, reject, settings
from requests.exceptions import InvalidHeader
from schemathesis import GenerationMode

EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, redis_server, s3_server, sketch_daemon):
    tag = secrets.token_hex(4)
    stack = write_stack(tmp_path_factory.mktemp("fuzzed"), redis_server.url, s3_server,
                        sketch_daemon.url, sketch_daemon.token,
                        queue={"plan_queue": f"plan-{tag}", "render_queue": f"render-{tag}"})
    store = stack.store()
    store.create_project("fuzzed", "Lin opened the shop. Tom came in.", "movie")
    store.close()
    token = secrets.token_urlsafe(16)
    proc, url = start_serve(stack, token)
    yield url, {"Authorization": f"Bearer {token}"}
    proc.stop()


def test_generated_requests_get_no_server_error(fuzzed):
    # Hypothesis strategies per operation (schemathesis's pytest plugin does not run on
    # pytest 9): valid requests and invalid ones alike.
    url, headers = fuzzed
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=headers)
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/events"):
            continue  # the stream of a task that never ends would keep its request open
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def answered(case):
                try:
                    answer = case.call(base_url=url, headers=headers, timeout=30)
                except (InvalidHeader, UnicodeEncodeError, ValueError):
                    reject()  # a request the HTTP client refuses to send: nothing to test
                assert answer.status_code < 500, (case.method, case.formatted_path,
                                                  answer.text)
                if answer.status_code >= 400:
                    error = answer.json()["error"]
                    assert error and "\n" not in error, answer.text

            answered()
        tried.append(operation.label)
    assert "POST /api/projects" in tried and "GET /api/tasks/{task}" in tried
