"""A pool of engine instances with a bounded, fair waiting queue.

An instance is a concurrency slot: a once request holds one for its call, a
session for its whole life. Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiges.errors import INVALID_OPERATION, NO_INSTANCE, AigesError


class NoInstance(AigesError):
    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(NO_INSTANCE, message)
        self.retry_after = retry_after


class InstancePool:
    def __init__(self, size: int, queue_limit: int, wait_s: float):
        if size < 1:
            raise ValueError("the pool needs at least one instance")
        self.size = size
        self.queue_limit = queue_limit
        self.wait_s = wait_s
        self._free: deque[int] = deque(range(size))
        # Instances whose call outlived its request (a timed-out C call cannot be
        # cancelled): out of the pool until the call really returns.
        self._stuck: set[int] = set()
        self._waiters: deque[asyncio.Future] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        # Why no instance is handed out any more (its engine is being finished); None = open.
        self.closed: str | None = None
        # Told the seconds each acquire that had to queue waited (the queue-wait metric);
        # one that found an instance free costs nothing here.
        self.waited: Callable[[float], None] | None = None

    @property
    def in_use(self) -> int:
        return self.size - len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def stuck(self) -> int:
        """Instances held by calls that outlived their request."""
        return len(self._stuck)

    @property
    def usable(self) -> bool:
        """At least one instance is not stuck (readiness)."""
        return len(self._stuck) < self.size

    def mark_stuck(self, instance: int) -> None:
        """The request holding ``instance`` gave up on its call; ``release`` ends it."""
        self._stuck.add(instance)

    def close(self, why: str) -> None:
        """Refuse every later acquire (503): the engine behind these instances is being
        finished. Holders and waiters already queued keep theirs."""
        self.closed = why

    async def acquire(self) -> int:
        """A free instance within ``wait_s``, else NoInstance (429)."""
        return await self._acquire(self.wait_s, self.queue_limit)

    async def acquire_any(self) -> int:
        """An instance however long it takes, queued with the others (the batcher's one
        dispatcher: the requests it serves keep deadlines of their own)."""
        return await self._acquire(None, None)

    async def _acquire(self, wait_s: float | None, queue_limit: int | None) -> int:
        if self.closed is not None:
            # Only work that kept a replaced engine's runner past its retirement gets here.
            raise AigesError(INVALID_OPERATION, self.closed, 503)
        if self._free and not self._waiters:
            return self._take(self._free.popleft())
        if queue_limit is not None and len(self._waiters) >= queue_limit:
            raise NoInstance(f"all {self.size} instances busy and {queue_limit} requests queued")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        queued = loop.time()
        try:
            async with asyncio.timeout(wait_s):
                instance = await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed an instance at the moment we gave up: give it back.
                self.release(waiter.result())
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise NoInstance(f"no instance free within {wait_s:g}s "
                                 f"(all {self.size} busy)") from None
            raise
        if self.waited is not None and wait_s is not None:  # a request's wait, not the batcher's
            self.waited(loop.time() - queued)
        return self._take(instance)

    def try_acquire(self) -> int | None:
        """An instance at once, or None: none free, others queued first, or closed."""
        if self._free and not self._waiters and self.closed is None:
            return self._take(self._free.popleft())
        return None

    def _take(self, instance: int) -> int:
        self._idle.clear()
        return instance

    def release(self, instance: int) -> None:
        self._stuck.discard(instance)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(instance)
                return
        self._free.append(instance)
        if len(self._free) == self.size:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Returns once every instance is back (used by shutdown before wrapperFini)."""
        await self._idle.wait()
