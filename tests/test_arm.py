"""The attempt loop of one arm (:class:`replay.arm.ArmClient`), over the scripted in-process provider."""

import asyncio

import pytest

from replay.arm import ArmClient, NotSent
from replay.config import Arm, Limits
from replay.errors import ArmStopped
from scripted_provider import LATENCY_MS, ScriptedProvider, fail

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def client(script, pause=None, stopping=lambda: False, **limits):
    arm = Arm(base_url=script.base_url, model="m", provider="scripted", limits=Limits(**limits))
    waits = []

    async def record_pause(seconds):
        waits.append(seconds)

    made = ArmClient("candidate", arm, ScriptedProvider.from_arm("candidate", arm), pause=pause or record_pause,
                     stopping=stopping)  # fmt: skip
    return made, waits


def test_every_attempt_is_recorded_and_the_wait_asked_for_is_kept(scripted):
    scripted.on("hi", fail(503), fail(429, wait_s=0.05))
    arm, waits = client(scripted)
    exchange = asyncio.run(arm.call(BODY))
    assert exchange.completion.text == "answer to hi" and exchange.error is None
    assert [(a.number, a.http_status, a.retry_after_s is not None) for a in exchange.attempts] == [
        (1, 503, True), (2, 429, True), (3, 200, False)]  # fmt: skip
    assert exchange.attempts[1].retry_after_s == 0.05 and waits[1] == 0.05
    assert arm.limiter.pacer.blocked_until > float("-inf")  # a server's wait holds the whole arm back
    assert exchange.completion.latency_ms == LATENCY_MS  # the answering attempt's own, no backoff in it


def test_a_failure_the_provider_calls_final_is_not_retried(scripted):
    scripted.always("hi", fail(400, "bad", retry=False))
    exchange = asyncio.run(client(scripted)[0].call(BODY))
    assert exchange.completion is None and exchange.error.status == 400 and len(exchange.attempts) == 1


def test_attempts_stop_at_max_attempts(scripted):
    scripted.always("hi", fail(500))
    exchange = asyncio.run(client(scripted, max_attempts=3)[0].call(BODY))
    assert [a.number for a in exchange.attempts] == [1, 2, 3] and exchange.attempts[-1].retry_after_s is None


def test_a_fatal_answer_stops_the_arm(scripted):
    scripted.on("hi", fail(401, "invalid key", fatal=True))
    with pytest.raises(ArmStopped, match="candidate endpoint answered 401: invalid key — not retrying"):
        asyncio.run(client(scripted)[0].call(BODY))


def test_nothing_is_sent_once_the_stage_stops(scripted):
    arm, _ = client(scripted, stopping=lambda: True)
    with pytest.raises(NotSent):
        asyncio.run(arm.call(BODY))
    assert scripted.bodies == []
