"""How a session's frames are written (a part of aiges.sessions.Session).

One engine call at a time. A frame whose calls are measured fast is written and
read inline, with no await (``write_soon``); frames a transport read together are
written together (``write_many``: the session's checks and the placement's count once
for them all, each engine call still watched and timed, aiges.runner.now_frames); any
other call is awaited, and the frames after it wait their turn. Order and errors are
those of one frame at a time.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine

from aiges import errors
from aiges.engine import Data, DataStatus
from aiges.errors import AigesError
from aiges.runner import checked, input_size

FINAL = (DataStatus.END, DataStatus.ONCE)


class Writes:
    """Session's writes: what they read and change of the session is its own state
    (aiges.sessions.Session.__init__)."""

    async def write(self, data: list[Data]) -> None:
        """Write one frame's inputs; reads follow the policy. An engine error ends the
        session (``error``), it is not raised."""
        later = self.write_soon(data)
        if later is not None:
            await later

    def write_soon(self, data: list[Data]) -> Coroutine | None:
        """``write``, done here and now when it can be: its engine calls are measured
        fast (they run inline, aiges.placement) and no other call of this session runs
        or waits; then None, and a frame costs no task, no await and no lock. Else the
        coroutine that does it, to be awaited."""
        if not (self._waiting or self._lock.locked()) and self._write_inline([data], 0):
            return None
        return self._write_next(data)

    def write_many(self, frames: list[list[Data]], start: int = 0
                   ) -> tuple[Coroutine | None, int]:
        """``write_soon`` of the frames a transport read together, from ``start`` on, in
        order: (None, len(frames)) when every one was written here and now; else the
        coroutine that writes the next one, to be awaited, and the index of the frame
        after it. Raises AigesError for a frame that may not be written (the session
        ended, every input has ended) once the frames before it are."""
        if not (self._waiting or self._lock.locked()):
            start = self._write_inline(frames, start)
            if start == len(frames):
                return None, start
        return self._write_next(frames[start]), start + 1

    def write_now(self, frames: list[list[Data]]) -> int:
        """Of frames a transport read together, those ``write_soon`` writes here and
        now, in order, written: how many (0 when a call of this session runs or waits).
        The rest are the transport's to write as usual (``write_many``), which also
        raises for a frame that may not be written."""
        if self._waiting or self._lock.locked():
            return 0
        return self._write_inline(frames, 0)

    def _write_next(self, data: list[Data]) -> Coroutine:
        """The coroutine that writes ``data`` on the engine threads (or once the calls
        before it are done); raises when it may not be written."""
        if self.ended:
            raise self.error or AigesError(errors.SESSION_ENDED, f"session {self.sid} has ended")
        if self._last_input:
            raise AigesError(errors.INVALID_OPERATION, "every input has ended; no more writes")
        self.touch()
        self.writes += 1
        last = self._last_input = self._counts_last(data)
        registry = self.registry
        reads = not registry.pushed and (registry.realtime or last)
        self._waiting += 1  # now, not when awaited: the next frame may not overtake it
        return self._write_later(data, last, reads)

    def _counts_last(self, data: list[Data]) -> bool:
        """``data``'s statuses counted: True when it ends every input stream. Counting
        one frame twice changes nothing (each key's last status is what is kept)."""
        unended = self._unended
        for item in data:
            if item.status in FINAL:
                unended.discard(item.key)
            else:
                unended.add(item.key)
        return not unended

    def _write_inline(self, frames: list[list[Data]], start: int) -> int:
        """Writes (and reads, by the policy) frames from ``start`` on while their calls
        run inline and the session takes writes; the index of the first one left."""
        registry = self.registry
        runner = registry.runner
        fast = runner.fast
        pushed, realtime = registry.pushed, registry.realtime
        read_fast = pushed or fast("read")
        # Upstream's acknowledgement is of the first frame alone: it is written alone.
        stop = start + 1 if self._ack and not self.writes else len(frames)
        end = start
        reads = last = False
        if not (self.ended or self._last_input):
            while end < stop and not last:
                data = frames[end]
                if not fast("write", input_size(data)):
                    break
                ends = self._counts_last(data)
                # Upstream reads once after the write, then (last input) until End.
                frame_reads = not pushed and (realtime or ends)
                if (frame_reads and not read_fast) or (end > start and frame_reads != reads):
                    break
                reads, last = frame_reads, ends
                end += 1
        if end == start:
            return start
        self.touch()
        results: list[list[Data] | None] = []
        engine = registry.engine
        # An engine that pushes keeps a burst's results until the burst is written (one
        # hand-over for them all, not a switch of threads per frame).
        held = registry.push_queue if pushed and end - start > 1 else None
        if held is not None:
            held.hold(True)
        try:
            runner.now_frames(engine.write, engine.read if reads else None, self.handle,
                              frames[start:end] if start or end < len(frames) else frames,
                              results, self.sid)
        except AigesError as exc:
            self.writes += len(results) + 1
            self._took_all(results, False)
            self._fail(exc)
            return len(frames)  # the session has ended: the rest is not written
        finally:
            if held is not None:
                held.hold(False)
        done = len(results)
        self.writes += done
        last = last and start + done == end
        if self._took_all(results, last):
            self._written(last)
        return start + done

    def _took_all(self, results: list[list[Data] | None], last: bool) -> bool:
        """The reads of frames written together, pushed in order, the last input marked
        before the last frame's; False when one was invalid (the session failed)."""
        try:
            if len(results) > 1 and not self._released:  # before the last input: at once
                earlier: list[list[Data]] = []
                try:
                    for items in results[:-1]:
                        if items:
                            earlier.append(checked(items, "read"))
                finally:  # those before an invalid one are kept
                    if earlier:
                        self._queue(earlier)
            self._last_input = last
            if results:
                self._took(results[-1])
        except AigesError as exc:
            self._fail(exc)
            return False
        return True

    async def _write_later(self, data: list[Data], last: bool, reads: bool) -> None:
        """The rest of a write whose calls go to the engine threads (or wait their turn)."""
        registry = self.registry
        try:
            async with self._lock:
                if self.ended:
                    return
                try:
                    await registry.runner.call(registry.engine.write, self.handle, data,
                                               size=input_size(data), sid=self.sid)
                    if reads:
                        await self._read_once()
                except AigesError as exc:
                    self._fail(exc)
                    return
        finally:
            self._waiting -= 1
        self._written(last)

    def _written(self, last: bool) -> None:
        """After a frame's calls: upstream's acknowledgement of a first frame with no
        result; after the last input, reads until the end."""
        if self._ack and self.writes == 1 and not (self._results or self.seq or self.ended):
            self._results.append([])
            self._changed_now()
        if last:
            self._quiet_since = self._loop.time()
            self._check_finished()
            if not self.ended and not self.registry.pushed:
                self._reader = asyncio.create_task(self._read_to_end())
