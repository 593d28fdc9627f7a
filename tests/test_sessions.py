"""Agent sessions: grouped conversations, per-session measures, ``replay show --session``, and
the closed loop, which feeds the candidate its own turns and stubs tool results from the log,
end to end against a local chat server, with a live tool endpoint that must never be called."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from click.testing import CliRunner

from agent_server import AgentServer, ToolHost, tool_call
from conftest import NO_GATES, write_log
from replay.cli import cli
from replay.conversations import Answer, ClosedLoop, Diverged, group_sessions
from replay.readers import iter_records
from replay.types import ToolCall

SYSTEM = {"role": "system", "content": "You book tables."}
ASK = {"role": "user", "content": "Book a table for 2 at 7pm"}
THANKS = {"role": "user", "content": "Thanks! And a taxi?"}
SEARCH_ARGS = {"party": 2, "time": "19:00"}
BOOK_ARGS = {"restaurant": "Luigi's", "party": 2, "time": "19:00"}


def tools(tool_url):
    def tool(name, description):
        return {"type": "function", "function": {"name": name, "description": description,
                                                 "parameters": {"type": "object", "properties": {}}}}  # fmt: skip

    return [tool("search_restaurants", f"GET {tool_url}/search"), tool("book", f"POST {tool_url}/book"),
            tool("taxi", f"POST {tool_url}/taxi"), tool("send_sms", f"POST {tool_url}/sms")]  # fmt: skip


def assistant(content=None, calls=()):
    message = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def result(call_id, content):
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def booking_turns(tool_url):
    """Production's four turns of one booking conversation: search, book, confirm, taxi."""
    a1 = assistant(calls=[tool_call("call_a", "search_restaurants", {**SEARCH_ARGS, "url": tool_url})])
    a2 = assistant(calls=[tool_call("call_b", "book", BOOK_ARGS)])
    a3 = assistant("Booked at Luigi's, ref 123.")
    a4 = assistant(calls=[tool_call("call_c", "taxi", {"to": "Luigi's", "time": "18:40"})])
    h1 = [SYSTEM, ASK]
    h2 = h1 + [a1, result("call_a", "Luigi's has a table")]
    h3 = h2 + [a2, result("call_b", "booked, ref 123")]
    h4 = h3 + [a3, THANKS]
    return list(zip([h1, h2, h3, h4], [a1, a2, a3, a4]))


def chat_turns():
    hi, when = {"role": "user", "content": "hi"}, {"role": "user", "content": "what time is it?"}
    return [([hi], assistant("hello!")), ([hi, assistant("hello!"), when], assistant("noon"))]


def log_record(record_id, messages, answer, session, tool_url):
    return {
        "id": record_id,
        "request": {"model": "gpt-4o", "messages": messages, "tools": tools(tool_url), "temperature": 0},
        "response": {"model": "gpt-4o", "choices": [{"index": 0, "message": answer,
                     "finish_reason": "tool_calls" if answer.get("tool_calls") else "stop"}],
                     "usage": {"prompt_tokens": 20, "completion_tokens": 5}},
        "metadata": {} if session is None else {"session_id": session},
    }  # fmt: skip


def write_sessions(path, tool_url):
    records = [log_record(f"b{n}", messages, answer, "s1", tool_url) for n, (messages, answer) in enumerate(booking_turns(tool_url), 1)]
    records += [log_record(f"c{n}", messages, answer, "s2", tool_url) for n, (messages, answer) in enumerate(chat_turns(), 1)]
    records.append(log_record("solo", [{"role": "user", "content": "ping"}], assistant("pong"), None, tool_url))
    random.Random(7).shuffle(records)  # turns are ordered by their history, not by the log's order
    return write_log(path, records)


def candidate_script(tool_url):
    """Calls the same tools as production for two turns, then texts the customer instead of confirming."""

    def answer(body):
        last = body["messages"][-1]
        if last == ASK:
            return {"tool_calls": [tool_call("cand_1", "search_restaurants", {**SEARCH_ARGS, "url": tool_url})]}
        if last.get("content") == "Luigi's has a table":
            return {"tool_calls": [tool_call("cand_2", "book", {"time": "19:00", "party": 2, "restaurant": "Luigi's"})]}
        if last.get("content") == "booked, ref 123":
            return {"tool_calls": [tool_call("cand_3", "send_sms", {"to": "+100", "text": f"booked; see {tool_url}"})]}
        return {"content": {"hi": "Hello there!", "what time is it?": "noon", "ping": "pong"}.get(last.get("content"), "ok")}

    return answer


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def tool_host():
    with ToolHost() as host:
        yield host


def scenario(tmp_path, log, base_url, mode=None):
    path = tmp_path / "agent.yaml"
    text = (f"name: agent\nlogs: {log}\ncandidate: {{base_url: '{base_url}', model: gpt-4o-mini, stream: false,"
            f" limits: {{max_attempts: 1}}}}\n")  # fmt: skip
    if mode:
        text += f"sessions: {mode}\n"
    path.write_text(text)
    return str(path)


def run(tmp_path, store_path, tool_host, mode=None):
    log = write_sessions(tmp_path / "agent.jsonl", tool_host.base_url)
    with AgentServer(candidate_script(tool_host.base_url)) as server:
        outcome = invoke("run", scenario(tmp_path, log, server.base_url, mode), "--store", store_path, "--quiet",
                         "--gates", NO_GATES)  # fmt: skip
        assert outcome.exit_code == 0, outcome.output
    return server.bodies


def by_last_message(bodies):
    return {json.dumps(body["messages"][-1], sort_keys=True): body for body in bodies}


# --- the closed loop, end to end ---------------------------------------------------------------


def test_closed_loop_feeds_back_the_candidates_turns_and_stops_where_it_diverges(tmp_path, store_path, tool_host):
    bodies = run(tmp_path, store_path, tool_host, "closed_loop")
    booking = [body for body in bodies if body["messages"][0] == SYSTEM]
    assert len(booking) == 3  # turn 4 is never sent: the session diverged at turn 3
    assert len(bodies) == 3 + 2 + 1
    booking.sort(key=lambda body: len(body["messages"]))
    assert booking[0]["messages"] == [SYSTEM, ASK]
    second = booking[1]["messages"]
    assert second[2]["tool_calls"][0]["id"] == "cand_1"  # the candidate's own call...
    assert second[3] == {"role": "tool", "tool_call_id": "cand_1", "content": "Luigi's has a table"}  # ...answered from the log
    third = booking[2]["messages"]
    assert third[:4] == second
    assert third[4]["tool_calls"][0]["id"] == "cand_2" and third[4]["tool_calls"][0]["function"]["name"] == "book"
    assert third[5] == {"role": "tool", "tool_call_id": "cand_2", "content": "booked, ref 123"}
    chat = sorted((body for body in bodies if body["messages"][0]["content"] == "hi"), key=lambda body: len(body["messages"]))
    assert chat[1]["messages"][1] == {"role": "assistant", "content": "Hello there!"}  # its own words, not production's
    assert tool_host.hits == 0


def test_closed_loop_report_says_how_far_each_session_got(tmp_path, store_path, tool_host):
    run(tmp_path, store_path, tool_host, "closed_loop")
    report = json.loads(invoke("report", "--store", store_path, "--format", "json").stdout)
    sessions = report["sessions"]
    assert {k: sessions[k] for k in ("key", "mode", "against", "count", "turns", "answered_turns", "completed",
                                     "diverged", "with_errors", "first_divergence")} == {
        "key": "session_id", "mode": "closed_loop", "against": "logged", "count": 2, "turns": 6,
        "answered_turns": 5, "completed": 1, "diverged": 1, "with_errors": 0, "first_divergence": {"3": 1}}  # fmt: skip
    s1 = next(s for s in sessions["sessions"] if s["session"] == "s1")
    assert (s1["turns"], s1["answered"], s1["diverged_at"]) == (4, 3, 3)
    assert s1["reason"] == "called send_sms where the baseline called no tool"
    assert s1["request_ids"] == ["b1", "b2", "b3", "b4"]
    assert sessions["tool_sequence_agreement"]["value"] == 0.5 and sessions["tool_sequence_agreement"]["n"] == 2
    text = " ".join(invoke("report", "--store", store_path).stdout.split())
    assert "Sessions (closed loop, by metadata.session_id, against the logged answers): 2 sessions, 5 of 6 turns" in text
    assert "Session s1 diverged at turn 3: called send_sms where the baseline called no tool; 3 of 4 turns answered" in text
    markdown = invoke("report", "--store", store_path, "--format", "markdown").stdout
    assert "### Sessions" in markdown and "First divergence: turn 3: 1" in markdown


def test_a_resumed_closed_loop_goes_on_from_the_stored_turns(tmp_path, store_path, tool_host):
    log = write_sessions(tmp_path / "agent.jsonl", tool_host.base_url)
    with AgentServer(candidate_script(tool_host.base_url)) as server:
        path = scenario(tmp_path, log, server.base_url, "closed_loop")
        assert invoke("run", path, "--store", store_path, "--quiet", "--gates", NO_GATES).exit_code == 0
        first = list(server.bodies)
        db = sqlite3.connect(store_path)
        run_id = db.execute("SELECT id FROM runs").fetchone()[0]
        with db:  # as if the run had stopped after the booking's first turn
            db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id IN ('b2', 'b3')")
            db.execute("UPDATE runs SET status = 'interrupted'")
        db.close()
        outcome = invoke("run", "--store", store_path, "--quiet", "--gates", NO_GATES, "--resume", run_id)
        assert outcome.exit_code == 0, outcome.output
        resumed = server.bodies[len(first):]
    assert len(resumed) == 2  # turns 2 and 3; turn 1 is read back from the store
    booking = sorted((body for body in first if body["messages"][0] == SYSTEM), key=lambda body: len(body["messages"]))
    assert sorted((body["messages"] for body in resumed), key=len) == [body["messages"] for body in booking[1:]]
    assert tool_host.hits == 0


# --- the open loop -----------------------------------------------------------------------------


def test_open_loop_sends_every_turn_with_its_logged_history(tmp_path, store_path, tool_host):
    bodies = run(tmp_path, store_path, tool_host)
    assert len(bodies) == 7
    logged = {json.dumps(messages, sort_keys=True) for messages, _ in booking_turns(tool_host.base_url) + chat_turns()}
    assert {json.dumps(body["messages"], sort_keys=True) for body in bodies} == logged | {json.dumps([{"role": "user", "content": "ping"}], sort_keys=True)}
    report = json.loads(invoke("report", "--store", store_path, "--format", "json").stdout)
    sessions = report["sessions"]
    assert (sessions["mode"], sessions["against"], sessions["answered_turns"], sessions["diverged"]) == ("open_loop", "logged", 6, 1)
    got = {s["session"]: (s["answered"], s["diverged_at"]) for s in sessions["sessions"]}
    assert got == {"s1": (4, 3), "s2": (2, None)}
    assert tool_host.hits == 0


def test_show_session_prints_the_conversation_turn_by_turn(tmp_path, store_path, tool_host):
    run(tmp_path, store_path, tool_host, "closed_loop")
    result = CliRunner().invoke(cli, ["show", "latest", "--session", "s1", "--store", store_path], env={"COLUMNS": "240"},
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert out.index("Turn 1 of 4") < out.index("Turn 2 of 4") < out.index("Turn 3 of 4") < out.index("Turn 4 of 4")
    assert "diverged at turn 3" in out and "send_sms({" in out and "not sent (the session diverged at turn 3)" in out
    missing = CliRunner().invoke(cli, ["show", "latest", "--session", "nope", "--store", store_path])
    assert missing.exit_code == 2 and "no session 'nope'" in missing.output


def test_a_scenario_with_an_unknown_sessions_mode_is_refused(tmp_path, store_path, tool_host):
    log = write_sessions(tmp_path / "agent.jsonl", tool_host.base_url)
    path = scenario(tmp_path, log, "http://127.0.0.1:9/v1", "closed-loop")
    result = CliRunner().invoke(cli, ["run", path, "--store", store_path])
    assert result.exit_code == 2
    assert "sessions: expected 'open_loop' or 'closed_loop', got 'closed-loop' (did you mean 'closed_loop'?)" in result.output


# --- no other host -----------------------------------------------------------------------------


def test_a_redirect_to_the_tool_host_is_not_followed(tmp_path, store_path, tool_host):
    log = write_sessions(tmp_path / "agent.jsonl", tool_host.base_url)
    with AgentServer(candidate_script(tool_host.base_url), redirect_to=tool_host.base_url + "/search") as server:
        outcome = invoke("run", scenario(tmp_path, log, server.base_url, "closed_loop"), "--store", store_path,
                         "--quiet", "--gates", NO_GATES)  # fmt: skip
    assert outcome.exit_code != 0 or "error" in outcome.output
    assert tool_host.hits == 0


def test_a_session_refuses_every_host_but_its_endpoint():
    import asyncio

    from replay.providers.transports import OneHost, TransportFailure

    class Inner:
        decodes = frozenset()
        posted: list[str] = []

        async def post(self, url, content, timeout_s):
            self.posted.append(url)
            return "answer"

        async def close(self):
            pass

    inner = Inner()
    guard = OneHost(inner, "http://127.0.0.1:8000/v1")
    assert asyncio.run(guard.post("http://127.0.0.1:8000/v1/chat/completions", b"{}", 1.0)) == "answer"
    for url in ("http://127.0.0.1:8001/v1/chat/completions", "http://127.0.0.1:8000.evil/x", "https://127.0.0.1:8000/v1"):
        with pytest.raises(TransportFailure, match="refused to send"):
            asyncio.run(guard.post(url, b"{}", 1.0))
    assert inner.posted == ["http://127.0.0.1:8000/v1/chat/completions"]


# --- the pieces --------------------------------------------------------------------------------


def test_sessions_group_and_order_turns_by_their_history(tmp_path):
    log = write_sessions(tmp_path / "agent.jsonl", "http://127.0.0.1:9")
    sessions = group_sessions(iter_records([log]))
    assert {key: [record.id for record in turns] for key, turns in sessions.items()} == {
        "s1": ["b1", "b2", "b3", "b4"], "s2": ["c1", "c2"]}


def test_the_closed_loop_diverges_when_the_candidate_calls_other_tools_or_none(tmp_path):
    log = write_sessions(tmp_path / "agent.jsonl", "http://t")
    turns = group_sessions(iter_records([log]))["s1"]
    loop = ClosedLoop(turns)
    first = loop.request(0, None, None)
    assert first["messages"] == [SYSTEM, ASK]
    no_tool = loop.request(1, first, Answer("I can't book.", ()))
    assert no_tool == Diverged(1, "production called search_restaurants; the candidate called no tool")
    other_args = loop.request(1, first, Answer(None, (ToolCall("x", "search_restaurants", json.dumps({"party": 3, "time": "19:00", "url": "http://t"})),)))
    assert isinstance(other_args, Diverged)
    same = loop.request(1, first, Answer(None, (ToolCall(None, "search_restaurants", json.dumps({"url": "http://t", "time": "19:00", "party": 2})),)))
    assert same["messages"][-1] == {"role": "tool", "tool_call_id": "call_1_0", "content": "Luigi's has a table"}
    assert same["messages"][-2]["tool_calls"][0]["id"] == "call_1_0"  # a call without id gets one both sides share
    assert loop.diverged_at_end(Answer(None, (ToolCall("t", "taxi", json.dumps({"to": "Luigi's", "time": "18:40"})),))) is None


def test_the_sample_takes_whole_conversations_and_leaves_lone_records_as_they_were():
    from replay.sampling import SampleSpec, select_ids, select_units

    items = [(f"r{i}", None) for i in range(300)] + [(f"s{s}-t{t}", f"s{s}") for s in range(100) for t in range(4)]
    for spec in (SampleSpec(rate=0.3, seed=1), SampleSpec(rate=1.0, max=150, seed=2), SampleSpec(rate=0.5, max=61, seed=3)):
        chosen = select_units(items, spec)
        sessions = {}
        for record_id, unit in items:
            if unit is not None:
                sessions.setdefault(unit, []).append(record_id in chosen)
        assert all(all(flags) or not any(flags) for flags in sessions.values())  # never part of a conversation
        assert any(all(flags) for flags in sessions.values())
        if spec.max is not None:
            assert spec.max - 3 <= len(chosen) <= spec.max  # at most the one conversation that would not fit is left out
    lone = [record_id for record_id, unit in items if unit is None]
    spec = SampleSpec(rate=0.4, seed=5)
    assert {r for r in select_units(items, spec) if r.startswith("r")} == select_ids(lone, spec)
    shuffled = items[::-1]
    assert select_units(shuffled, SampleSpec(rate=1.0, max=150, seed=2)) == select_units(items, SampleSpec(rate=1.0, max=150, seed=2))


def test_an_anthropic_logged_session_is_closed_in_chat_form():
    from replay.types import Completion, LogRecord

    def turn(record_id, messages, calls=()):
        request = {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "You book.", "messages": messages}
        answer = Completion(text=None, tool_calls=tuple(calls))
        return LogRecord(record_id, request, read_answer=lambda: answer, metadata={"session_id": "a"})

    ask = {"role": "user", "content": "Book"}
    use = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"party": 2}}]}
    found = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Luigi's"}]}
    loop = ClosedLoop([turn("t1", [ask], [ToolCall("toolu_1", "search", '{"party": 2}')]), turn("t2", [ask, use, found])])
    first = loop.request(0, None, None)
    assert first["messages"] == [{"role": "system", "content": "You book."}, ask]
    second = loop.request(1, first, Answer(None, (ToolCall("call_9", "search", '{"party":2}'),)))
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_9"
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "call_9", "content": "Luigi's"}


def test_the_closed_loop_stops_where_the_log_skips_a_turn(tmp_path):
    log = write_sessions(tmp_path / "agent.jsonl", "http://t")
    turns = group_sessions(iter_records([log]))["s1"]
    loop = ClosedLoop([turns[0], turns[2], turns[3]])  # turn 2 missing: turn 3's results answer calls turn 1 never made
    first = loop.request(0, None, None)
    same = Answer(None, (ToolCall("x", "search_restaurants", json.dumps({**SEARCH_ARGS, "url": "http://t"})),))
    assert loop.request(1, first, same) == Diverged(1, "the log does not continue this turn (a turn missing from the log?)")
