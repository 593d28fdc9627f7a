import asyncio

from replay.ratelimit import SAFETY, Limiter, Pacer


class FakeClock:
    """A virtual clock: sleeping advances time, so pacing is tested exactly and instantly."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def run_requests(limiter, clock, n, tokens=0, pause_at=None):
    sent = []

    async def one(i):
        async with limiter.slot(tokens):
            sent.append(clock())
            if pause_at is not None and i == pause_at:
                limiter.pause(5.0)

    async def main():
        await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(main())
    return sent


def test_rpm_spaces_requests_evenly():
    clock = FakeClock()
    sent = run_requests(Limiter(16, rpm=300, clock=clock, sleep=clock.sleep), clock, 20)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= 0.2 * SAFETY - 1e-9
    # never more than 5 in any one-second window
    assert all(sum(1 for t in sent if s <= t < s + 1) <= 5 for s in sent)


def test_tpm_spaces_by_tokens():
    clock = FakeClock()
    sent = run_requests(Limiter(4, tpm=6000, clock=clock, sleep=clock.sleep), clock, 5, tokens=100)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert all(abs(g - 1.0 * SAFETY) < 1e-9 for g in gaps)  # 100 tokens at 100 tokens/s


def test_pause_holds_the_whole_arm():
    clock = FakeClock()
    sent = run_requests(Limiter(4, rpm=6000, clock=clock, sleep=clock.sleep), clock, 6, pause_at=0)
    assert sent[1] - sent[0] >= 5.0


def test_no_limits_means_no_waiting():
    clock = FakeClock()
    sent = run_requests(Limiter(8, clock=clock, sleep=clock.sleep), clock, 10)
    assert set(sent) == {1000.0}


def test_concurrency_cap():
    in_flight = 0
    peak = 0
    limiter = Limiter(3)

    async def one():
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    async def main():
        await asyncio.gather(*(one() for _ in range(10)))

    asyncio.run(main())
    assert peak == 3


def test_stall_does_not_release_a_burst():
    """After the clock jumps (an event-loop stall), spacing is still kept from the real send time."""
    clock = FakeClock()
    pacer = Pacer(rpm=60, tpm=None, clock=clock)
    pacer.take()
    clock.now += 10  # stalled for 10 s
    assert pacer.earliest() <= clock.now
    pacer.take()
    assert abs(pacer.earliest() - clock.now - 1.0 * SAFETY) < 1e-9
