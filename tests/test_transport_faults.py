"""Every fault of the scripted fault server, against all three transports: each ends in the
parsed answer or in one named error, alike on native, aiohttp and httpx, and nothing hangs."""

from __future__ import annotations

import asyncio
import sqlite3
import tracemalloc

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from fault_server import ANSWER, FaultServer
from replay import __version__
from replay.cli import cli
from replay.providers.base import ProviderError
from replay.providers.openai_compat import OpenAICompatProvider
from replay.providers.openai_policy import plan_retry
from replay.types import Completion

TRANSPORTS = ["native", "aiohttp", "httpx"]
SECRET = "sk-proj-" + "Zq8" * 16
GATEWAY_SECRET = "gw-" + "7f3a" * 8
REQUEST = {"model": "logged", "messages": [{"role": "user", "content": "Where is parcel 7?"}]}
GUARD_S = 10.0
"""No exchange here takes more than a fraction of a second: past this, it hung."""


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


def provider_for(server: FaultServer, fault: str, transport: str, stream: bool = True) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        base_url=server.url(fault), model="cand", params={}, api_key=SECRET, stream=stream, transport=transport,
        headers={"x-gateway-key": "${GATEWAY_KEY}"}, max_response_mb=1,
    )  # fmt: skip


def attempts(server, fault, transport, stream=True, times=1, timeout_s=5.0) -> list[Completion | ProviderError]:
    """Send ``times`` requests one after another through one provider, as the runner does."""

    async def go():
        provider = provider_for(server, fault, transport, stream)
        outcomes = []
        try:
            for _ in range(times):
                try:
                    outcomes.append(await asyncio.wait_for(provider.send(provider.build_body(REQUEST), timeout_s), timeout_s))
                except ProviderError as exc:
                    outcomes.append(exc)
        finally:
            await provider.aclose()
        return outcomes

    async def guarded():
        return await asyncio.wait_for(go(), GUARD_S)

    return asyncio.run(guarded())


def attempt(server, fault, transport, stream=True) -> Completion | ProviderError:
    return attempts(server, fault, transport, stream)[0]


def error(outcome) -> ProviderError:
    assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
    return outcome


def answer(outcome) -> Completion:
    assert isinstance(outcome, Completion), f"expected the answer, got {type(outcome).__name__}: {outcome}"
    assert outcome.text == ANSWER and outcome.finish_reason == "stop"
    assert (outcome.usage.prompt_tokens, outcome.usage.completion_tokens) == (9, 6)
    return outcome


def retried(failure: ProviderError) -> bool:
    return plan_retry(attempt=1, max_attempts=5, status=failure.status, error_code=failure.code, transport_error=failure.transport).retry


@pytest.fixture(autouse=True)
def _gateway_key(monkeypatch):
    monkeypatch.setenv("GATEWAY_KEY", GATEWAY_SECRET)


# --- answers every transport must read -------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize(
    "fault", ["ok", "slow-bytes", "huge-header", "many-headers", "gzip", "deflate", "raw-deflate", "stream-labelled-json"]
)
def test_answers_are_read_whole(server, fault, transport, stream):
    answer(attempt(server, fault, transport, stream))
    sent = server.stats.requests[0].headers
    assert sent["user-agent"] == f"replay/{__version__}"
    assert sent["authorization"] == f"Bearer {SECRET}" and sent["x-gateway-key"] == GATEWAY_SECRET


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["json-to-stream", "json-untyped"])
def test_a_json_answer_to_a_streamed_request_is_the_answer(server, fault, transport):
    completion = answer(attempt(server, fault, transport, stream=True))
    assert server.stats.requests[0].body["stream"] is True
    assert completion.ttft_ms == completion.latency_ms  # nothing streamed: the first token came with the last


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("fault", ["ok", "lagging-terminator"])
def test_kept_alive_answers_share_one_connection(server, fault, transport, stream):
    for outcome in attempts(server, fault, transport, stream, times=5):
        answer(outcome)
    assert server.stats.connections == 1  # streamed answers too: read to their end, not dropped at [DONE]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_connection_the_server_closes_after_a_stream_is_replaced_not_failed(server, transport):
    for outcome in attempts(server, "close-after-stream", transport, times=12):
        answer(outcome)
    assert server.stats.connections == 12


# --- answers that must be named, and not retried ----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "fault, status, target",
    [("redirect", 302, "https://api.example.com/v1/chat/completions"), ("redirect-relative", 307, None)],
)
def test_a_redirect_is_named_and_stops_the_arm(server, fault, status, target, transport):
    failure = error(attempt(server, fault, transport))
    target = target or f"http://127.0.0.1:{server.port}/v2/chat/completions"
    assert failure.message == f"redirect to {target}: replay does not follow redirects; fix base_url"
    assert (failure.status, failure.error_class) == (status, "redirect")
    assert plan_retry(attempt=1, max_attempts=5, status=failure.status).fatal
    assert len(server.stats.requests) == 1  # not followed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_encoding_the_transport_cannot_decode_is_named(server, transport):
    async def decoded():
        provider = provider_for(server, "brotli", transport)
        await provider.aclose()
        return ", ".join(sorted(provider._session.decodes))

    decodes = asyncio.run(decoded())
    failure = error(attempt(server, "brotli", transport))
    assert failure.error_class == "bad_response" and failure.status == 200 and not retried(failure)
    if "br" not in decodes:
        assert failure.message == (
            f"the server compressed its answer with 'br', which the {transport} transport cannot decode (it accepts {decodes})"
        )


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_body_that_is_not_what_its_encoding_says_is_named(server, transport, stream):
    failure = error(attempt(server, "bad-gzip", transport, stream))
    assert (failure.error_class, failure.status) == ("bad_response", 200) and not retried(failure)
    assert failure.message.startswith("cannot decode the ")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "stream, message",
    [
        (True, "expected an event stream, got text/html: '<html><body>Sign in to the captive portal</body></html>'"),
        (False, "response is not JSON: '<html><body>Sign in to the captive portal</body></html>'"),
    ],
    ids=["stream", "whole"],
)
def test_an_answer_that_is_not_an_answer_is_named(server, transport, stream, message):
    failure = error(attempt(server, "html", transport, stream))
    assert (failure.message, failure.error_class, failure.status) == (message, "bad_response", 200)
    assert not retried(failure)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("fault", ["huge-body", "huge-declared", "gzip-bomb"])
def test_an_answer_over_the_cap_is_refused_and_read_no_further(server, fault, transport, stream):
    failure = error(attempt(server, fault, transport, stream))
    assert failure.message == "answer larger than 1 MB (limits.max_response_mb): stopped reading it"
    assert (failure.error_class, failure.status) == ("response_too_large", 200) and not retried(failure)
    assert server.stats.bytes_sent < 40_000_000  # of 200 MB: the client stopped reading


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_gzip_bomb_is_refused_in_bounded_memory(server, transport, stream):
    """The cap bounds memory, not only the answer kept: the bomb is inflated a piece at a time
    (httpx's own decoder inflated a whole network read, 64 KB of it to 64 MB, before the cap saw it)."""
    attempt(server, "gzip-bomb", "native")  # the fault server builds its bomb once: not counted below
    tracemalloc.start()
    try:
        failure = error(attempt(server, "gzip-bomb", transport, stream))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert failure.error_class == "response_too_large"
    assert peak < 16_000_000, f"{peak / 1e6:.0f} MB at the peak for a 1 MB cap"


def test_an_httpx_answer_built_in_memory_is_read_as_httpx_decoded_it():
    """``httpx.MockTransport`` answers are read (and decoded) by httpx before replay sees them."""
    import gzip

    import httpx

    from replay.providers.transports.httpx_transport import HttpxSession

    body = b'{"id": "mock"}'

    def answer(request):
        if request.url.path == "/held":  # content=: httpx reads and decodes it as the answer is built
            return httpx.Response(200, content=gzip.compress(body), headers={"content-encoding": "gzip"})
        return httpx.Response(200, stream=httpx.ByteStream(gzip.compress(body)), headers={"content-encoding": "gzip"})

    async def read_both():
        session = HttpxSession({}, 2, transport=httpx.MockTransport(answer))
        bodies = []
        for path in ("/held", "/streamed"):
            response = await session.post(f"http://127.0.0.1:9{path}", b"{}", 5.0)
            bodies.append(await response.read())
            await response.close()
        await session.close()
        return bodies

    assert asyncio.run(read_both()) == [body, body]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_headers_that_never_end_are_refused_and_read_no_further(server, transport):
    failure = error(attempt(server, "endless-header", transport))
    assert (failure.error_class, failure.message) == ("response_too_large", "response headers larger than 100 KB: stopped reading")
    assert server.stats.bytes_sent < 40_000_000


# --- secrets echoed back ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_key_echoed_in_an_error_is_scrubbed(server, transport):
    unauthorized = error(attempt(server, "echo-401", transport))
    assert unauthorized.message == "Incorrect API key provided: Bearer [REDACTED]."
    assert (unauthorized.status, unauthorized.code) == (401, "invalid_api_key")
    dumped = error(attempt(server, "echo-500", transport))
    assert dumped.status == 500 and dumped.message.startswith("Internal error while handling\nPOST /echo-500/v1/chat/completions")
    for failure in (unauthorized, dumped):
        assert SECRET not in failure.message and GATEWAY_SECRET not in failure.message
        assert SECRET[:12] not in failure.message  # not half of it either


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_key_echoed_in_an_answer_is_scrubbed(server, transport):
    completion = attempt(server, "echo-answer", transport, stream=False)
    assert isinstance(completion, Completion)
    assert "authorization=Bearer [REDACTED]" in completion.text and "x-gateway-key=[REDACTED]" in completion.text
    assert SECRET not in completion.text and GATEWAY_SECRET not in completion.text


# --- answers that break -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_another_protocol_on_the_port_is_a_connection_error(server, transport):
    failure = error(attempt(server, "banner", transport))
    assert failure.error_class == "connection_error" and failure.status is None and retried(failure)
    if transport == "httpx":  # h11 waits for the end of a header block that never comes
        assert failure.message == "no response: RemoteProtocolError: Server disconnected without sending a response."
    else:
        assert failure.message.startswith("malformed HTTP response: ")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_that_speaks_first_in_another_protocol_is_a_connection_error(transport):
    with FaultServer(greeting=b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        failure = error(attempt(server, "ok", transport))
    assert failure.error_class == "connection_error" and failure.status is None and retried(failure)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_reset_mid_stream_is_a_broken_stream(server, transport):
    failure = error(attempt(server, "reset-mid-stream", transport))
    assert failure.error_class == "truncated_stream" and retried(failure)
    assert failure.message.startswith("stream broken after 1 chunks (response body cut short")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_body_short_of_its_content_length_is_a_truncated_answer_not_an_unreachable_server(server, transport, stream):
    failure = error(attempt(server, "short-body", transport, stream))
    assert failure.error_class == "truncated_stream" and retried(failure)
    assert "cut short" in failure.message


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_of_comments_only_is_a_truncated_stream(server, transport):
    failure = error(attempt(server, "comments-only", transport))
    assert failure.message == "stream ended after 0 chunks without a finish reason or [DONE]"
    assert failure.error_class == "truncated_stream" and retried(failure)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stalled_answer_times_out(server, transport):
    """The attempt's deadline (as the runner sets it), or the transport's own read timeout: a timeout either way."""
    try:
        kind = error(attempts(server, "stall", transport, timeout_s=0.3)[0]).error_class
    except asyncio.TimeoutError:
        kind = "timeout"  # what the runner stores when its deadline fires
    assert kind == "timeout"


def test_the_answer_cap_comes_from_the_scenario_and_is_not_retried(server, tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi")])
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        f"logs: {log}\ncandidate: {{base_url: '{server.url('huge-body')}', model: m, stream: false}}\n"
        "limits: {max_response_mb: 0.5, max_attempts: 3}\n"
    )
    store = str(tmp_path / "replay.db")
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store, "--gates", NO_GATES, "--quiet"])
    assert result.exit_code == 1, result.output  # completed, but no pair was answered on both arms
    row = sqlite3.connect(store).execute(
        "SELECT error_class, error_message, attempts FROM results WHERE arm = 'candidate'"
    ).fetchone()
    assert row == ("response_too_large", "answer larger than 0.5 MB (limits.max_response_mb): stopped reading it", 1)


def test_a_redirect_stops_the_run_with_one_line_naming_it(server, tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi"), record("b", "there")])
    result = CliRunner().invoke(
        cli, ["run", "--logs", log, "--candidate-url", server.url("redirect"), "--candidate-model", "m",
              "--store", str(tmp_path / "replay.db"), "--gates", NO_GATES, "--quiet", "--concurrency", "1"],
    )  # fmt: skip
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "Error: candidate endpoint answered 302: redirect to https://api.example.com/v1/chat/completions:"
        " replay does not follow redirects; fix base_url — not retrying"
    )
    assert len(server.stats.requests) == 1  # the arm stopped at the first redirect
