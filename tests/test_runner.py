"""replay.runner: the engine's task plumbing."""

import asyncio

import pytest

from replay.runner import _gather_failing_fast


def test_a_task_that_fails_unexpectedly_cancels_the_others_instead_of_hanging():
    """Workers wait on a queue the dispatcher feeds: if one task dies, the rest would wait forever."""

    async def main():
        never = asyncio.Event()

        async def waits_forever():
            await never.wait()

        async def breaks():
            await asyncio.sleep(0.01)
            raise TypeError("str is not valid UTF-8: surrogates not allowed")

        tasks = [asyncio.ensure_future(waits_forever()), asyncio.ensure_future(breaks())]
        results = await asyncio.wait_for(_gather_failing_fast(tasks), timeout=5)
        return tasks, results

    tasks, results = asyncio.run(main())
    assert tasks[0].cancelled() and results[0] is None
    assert isinstance(results[1], TypeError)


def test_tasks_that_end_normally_are_all_waited_for():
    async def main():
        async def ends(delay, value):
            await asyncio.sleep(delay)
            return value

        tasks = [asyncio.ensure_future(ends(0.02, 1)), asyncio.ensure_future(ends(0.01, 2))]
        results = await _gather_failing_fast(tasks)
        return tasks, results

    tasks, results = asyncio.run(main())
    assert results == [None, None] and [task.result() for task in tasks] == [1, 2]
