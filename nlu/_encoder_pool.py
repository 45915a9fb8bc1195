"""Encoder processes: MiniLM + USE forward passes outside the serving process's GIL.

(Over 500 lines on purpose: the wire format, the worker loop and the pool's death/retry/timeout rules are one
protocol, each part written against the others.)

One ``EncoderPool`` holds ``processes`` worker processes (spawned, not forked: the serving process
has threads and an event loop), each with its own single-threaded ``Embedder`` and one socket pair to
the pool. A request is a pickled list of texts, sent from the caller's thread to the least busy worker
(workers whose models are loaded first); the answer is a small header and the float32 rows, read from
the socket straight into a numpy array. An event loop reads the answers itself (``loop.add_reader`` on
the worker's socket from its first request there on); a blocking caller reads in its own thread. A
worker reads, encodes and answers one request at a time, in the order they were sent, so answers need
no ids; a sender that finds the socket full reads answers while it waits for room (the worker takes no
request while its answer is not taken). No executor, manager or feeder threads: one round trip costs
the serving process a send, a wake-up and one read. The pool starts on first use (or ``start()``), so
tests and scripts that never parse concurrently pay nothing.

A worker that dies (killed, out of memory, a crash in native code, models that cannot load) is seen
as the end of its socket: every request in flight on it fails, the worker is replaced (``restarts``)
and each failed request is retried once. A request that still fails raises ``EncoderUnavailable``,
and so does one that gets no answer within ``timeout_s`` plus 50 ms per text (looked at every half
second; its worker is killed and replaced; the other requests on that worker are retried), so a caller
never waits forever. An exception raised by ``Embedder.encode`` in a worker is raised to its caller; the
worker keeps serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import pickle
import select
import socket
import struct
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]

# Request: payload size, then the pickled list of texts.
_REQUEST = struct.Struct("<I")
# Answer: kind, rows, columns, payload size, the worker's CPU seconds for this request; then the payload
# (float32 rows, or the pickled exception that encode raised).
_ANSWER = struct.Struct("<IIIQd")
_ROWS, _ERROR = 1, 2
# One read takes up to this much: whole answers of up to ~18 rows.
_INBOX_BYTES = 64 * 1024
# A worker that takes no request for this long while its answers are being read is wedged (killed, its
# requests retried).
_SEND_TIMEOUT_S = 5.0
# What ps, top and /proc/<pid>/stat call an encoder worker (15 characters at most).
WORKER_PROCESS_NAME = "shoptalk-nlu"
# How long close() lets the workers finish the requests they have before killing them.
_CLOSE_WAIT_S = 5.0
# A blocking reader looks at its request this often when another thread may have read its answer.
_SYNC_POLL_S = 0.05
# An event loop looks for its requests past their deadline this often (one timer per loop, not per request).
_WATCHDOG_PERIOD_S = 0.5


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawned workers re-run the parent's ``__main__`` script unless it is hidden while they start
    (a script without ``if __name__ == "__main__"`` would start the server again in each worker);
    they need nothing from it."""
    real = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if real is not None:
            sys.modules["__main__"] = real


class EncoderUnavailable(RuntimeError):
    """The encoder processes could not answer (crashed twice, or timed out)."""


class _Lost(Exception):
    """The worker holding a request died before answering (the request may run once more)."""


# ---------- the worker process ----------
def _name_process(name: str) -> None:
    """Show the worker as ``name`` in ps, top and /proc/<pid>/stat (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/comm", "w", encoding="ascii") as comm:
            comm.write(name[:15])


def _recv_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """``size`` bytes from a blocking socket, or None at its end."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return data


def _next_request(sock: socket.socket) -> list[str] | None:
    """The next request's texts, or None at the socket's end (the pool closed or its process ended)."""
    head = _recv_exactly(sock, _REQUEST.size)
    payload = None if head is None else _recv_exactly(sock, _REQUEST.unpack(head)[0])
    return None if payload is None else list(pickle.loads(payload))


def _answer(sock: socket.socket, kind: int, body: memoryview, shape: tuple[int, int], cpu: float) -> None:
    head = _ANSWER.pack(kind, shape[0], shape[1], body.nbytes, cpu)
    sent = sock.sendmsg([head, body])
    if sent < len(head):
        sock.sendall(head[sent:])
        sent = len(head)
    if sent - len(head) < body.nbytes:
        sock.sendall(body[sent - len(head):])


def _pickled_error(error: Exception) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as its text
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


def _serve(sock: socket.socket, loaded: ctypes.c_bool, backend: str, threads: int, helper_threads: int) -> None:
    """A worker process: load the models, then answer requests in order until the pool's socket ends."""
    _name_process(WORKER_PROCESS_NAME)
    # Imported here: the module is imported by the serving process too, which must not load models.
    from nlu.embedder import Embedder

    try:
        embedder = Embedder(threads=threads, workers=helper_threads, backend=backend, processes=0)
        embedder.load()
    except Exception:  # noqa: BLE001 - the pool sees the process end; the reason goes to stderr
        traceback.print_exc()
        raise SystemExit(1) from None
    loaded.value = True
    while (texts := _next_request(sock)) is not None:
        started = time.process_time()
        try:
            rows = np.ascontiguousarray(embedder.encode(texts), dtype=np.float32)
        except Exception as error:  # noqa: BLE001 - raised again in the caller
            payload = memoryview(_pickled_error(error))
            _answer(sock, _ERROR, payload, (0, 0), time.process_time() - started)
            continue
        _answer(sock, _ROWS, rows.data.cast("B"), rows.shape, time.process_time() - started)


# ---------- the serving process ----------
class _Waiter:
    """One request's answer: an asyncio future of the caller's loop, or a thread-safe future."""

    __slots__ = ("size", "loop", "thread", "deadline", "future")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop | None, deadline: float) -> None:
        self.size = size
        self.loop = loop
        self.thread = threading.get_ident()
        self.deadline = deadline
        self.future: asyncio.Future[FloatMatrix] | concurrent.futures.Future[FloatMatrix] = (
            loop.create_future() if loop is not None else concurrent.futures.Future()
        )

    def finish(self, rows: FloatMatrix | None, error: BaseException | None) -> None:
        """Hand over the answer (from any thread)."""
        if self.loop is None or threading.get_ident() == self.thread:
            self.settle(rows, error)
        else:
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                self.loop.call_soon_threadsafe(self.settle, rows, error)

    def settle(self, rows: FloatMatrix | None, error: BaseException | None) -> None:
        if self.future.done():
            return  # timed out or cancelled before the answer came
        if error is not None:
            self.future.set_exception(error)
        else:
            assert rows is not None
            self.future.set_result(rows)


class _Worker:
    """One encoder process, its socket and the requests it has not answered yet (in sending order)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, sock: socket.socket,
                 loaded: ctypes.c_bool) -> None:
        self.process = process
        self.sock = sock
        self.fd = sock.fileno()
        self.loaded = loaded
        self.pid = process.pid or 0
        self.pending: deque[_Waiter] = deque()
        self.busy = 0  # texts sent and not answered
        self.users = 0  # calls in progress that may touch the socket
        self.dead = False
        self.closing = False  # close() asked it to end: its end is no crash
        # Event loops watching the socket (loop.add_reader from their first request on, until the worker
        # is gone), with their threads. The socket is closed once no call uses it and no loop watches it.
        self.loops: dict[asyncio.AbstractEventLoop, int] = {}
        self.send_lock = threading.Lock()
        self.read_lock = threading.Lock()
        # Answers are read into the inbox (one read takes a small answer whole); the rest of an answer
        # that does not fit is read straight into its body.
        self.inbox = memoryview(bytearray(_INBOX_BYTES))
        self.filled = 0
        self.body: FloatMatrix | bytearray | None = None
        self.body_view = self.inbox
        self.body_got = 0
        self.cpu = 0.0


class EncoderPool:
    """``processes`` encoder processes behind an async ``encode`` (thread-safe; any event loop)."""

    def __init__(self, processes: int, *, backend: str, threads: int = 1, helper_threads: int = 1,
                 timeout_s: float = 120.0) -> None:
        if processes < 1:
            raise ValueError(f"an encoder pool needs at least one process, got {processes}")
        self.processes = processes
        self.backend = backend
        self.threads = threads
        self.helper_threads = helper_threads
        self.timeout_s = timeout_s
        self.restarts = 0
        # CPU seconds the workers spent in encode calls (summed from their answers).
        self.worker_cpu_seconds = 0.0
        self._workers: list[_Worker] = []  # the live ones
        self._lock = threading.Lock()
        # Per event loop with requests in flight: the timer that fails its requests past their deadline.
        self._watchdogs: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}

    # ---------- lifecycle ----------
    def _spawn(self) -> _Worker:
        context = multiprocessing.get_context("spawn")
        ours, theirs = socket.socketpair()
        loaded = context.RawValue(ctypes.c_bool, False)
        process = context.Process(target=_serve, name="shoptalk-encoder", daemon=True,
                                  args=(theirs, loaded, self.backend, self.threads, self.helper_threads))
        try:
            with _main_module_hidden():
                process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _Worker(process, ours, loaded)

    def _fill(self) -> list[_Worker]:
        """The live workers, new ones spawned for those that died (call with the lock held)."""
        while len(self._workers) < self.processes:
            self._workers.append(self._spawn())
        return self._workers

    def start(self) -> list[int]:
        """Spawn every worker and load its models now; returns the worker pids."""
        with self._lock:
            workers = list(self._fill())
        deadline = time.monotonic() + max(self.timeout_s, 300.0)
        for worker in workers:
            while not worker.loaded.value:
                if worker.process.exitcode is not None or time.monotonic() > deadline:
                    self._kill(worker)
                    raise EncoderUnavailable(f"encoder process {worker.pid} could not load its models "
                                             "(its error is on stderr)")
                multiprocessing.connection.wait([worker.process.sentinel], timeout=_SYNC_POLL_S)
        return self.pids()

    def _retire(self, worker: _Worker, error: BaseException, *, restart: bool) -> None:
        """Mark a worker dead (the next request spawns its successor): its unanswered requests fail with
        ``error``."""
        with self._lock:
            if worker.dead:
                return
            worker.dead = True
            if worker in self._workers:
                self._workers.remove(worker)
            waiting = list(worker.pending)
            worker.pending.clear()
            worker.busy = 0
            if restart:
                self.restarts += 1
        for waiter in waiting:
            waiter.finish(None, type(error)(*error.args))  # one exception object per caller
        self._close_if_unused(worker)

    def _ended(self, worker: _Worker, how: str) -> None:
        """The worker's socket or process ended: a crash, unless close() asked for it."""
        if worker.closing:
            self._retire(worker, EncoderUnavailable("the encoder pool was closed"), restart=False)
        else:
            self._retire(worker, _Lost(f"encoder process {worker.pid} {how}"), restart=True)

    def _close_if_unused(self, worker: _Worker) -> None:
        """Close a dead worker's socket once no call uses it and no running loop watches it. Loops of
        this thread (or closed ones) stop watching here; the others do when they see the socket end."""
        here = threading.get_ident()
        with self._lock:
            if not worker.dead:
                return
            for loop, thread in list(worker.loops.items()):
                if thread == here or loop.is_closed():
                    loop.remove_reader(worker.fd)
                    del worker.loops[loop]
            unused = worker.users == 0 and not worker.loops
        if unused:
            worker.sock.close()

    def _kill(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError, ValueError):
            worker.process.kill()
        self._retire(worker, _Lost(f"encoder process {worker.pid} was killed"), restart=True)

    def close(self) -> None:
        """Stop the workers once they have answered what they were sent (killed after a few seconds)."""
        with self._lock:
            workers, self._workers = self._workers, []  # a request from now on starts new workers
        for worker in workers:
            worker.closing = True
            with contextlib.suppress(OSError):
                worker.sock.shutdown(socket.SHUT_WR)  # the worker ends after its last answer
        for worker in workers:
            worker.process.join(_CLOSE_WAIT_S)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join(_CLOSE_WAIT_S)
            self._ended(worker, "was closed")

    def pids(self) -> list[int]:
        """Pids of the running workers (empty before the first use)."""
        with self._lock:
            return sorted(worker.pid for worker in self._workers)

    # ---------- sending ----------
    def _pick(self) -> _Worker:
        """The least busy live worker (loaded ones first), now counted as used by the caller."""
        while True:
            with self._lock:
                worker = min(self._fill(), key=lambda w: (not w.loaded.value, w.busy))
                worker.users += 1
            # A watched socket shows a death at once; an idle unwatched worker is asked directly.
            if worker.loops or worker.busy or worker.process.exitcode is None:
                return worker
            self._retire(worker, _Lost("idle encoder process died"), restart=True)
            self._release(worker)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.users -= 1
        if worker.dead:
            self._close_if_unused(worker)

    def _send(self, batch: list[str], loop: asyncio.AbstractEventLoop | None) -> tuple[_Worker, _Waiter]:
        """Send a request to a worker (which the caller must ``_release``); its waiter."""
        payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        message = memoryview(_REQUEST.pack(len(payload)) + payload)
        waiter = _Waiter(len(batch), loop, time.monotonic() + self._timeout(batch))
        worker = self._pick()
        with worker.send_lock:  # the pending order is the sending order
            with self._lock:
                alive = not worker.dead
                if alive:
                    worker.pending.append(waiter)
                    worker.busy += len(batch)
            if not alive:
                waiter.finish(None, _Lost(f"encoder process {worker.pid} died"))
                return worker, waiter
            try:
                self._send_all(worker, message)
            except OSError as error:
                failure = error
            else:
                return worker, waiter
        # A broken socket or a worker that takes no requests: its requests (this one too) may run again.
        with contextlib.suppress(OSError, ValueError):
            worker.process.kill()
        self._retire(worker, _Lost(f"encoder process {worker.pid} took no request: {failure}"), restart=True)
        return worker, waiter

    def _send_all(self, worker: _Worker, message: memoryview) -> None:
        deadline = 0.0
        while message:
            try:
                message = message[worker.sock.send(message, socket.MSG_DONTWAIT):]
                continue
            except BlockingIOError:
                pass
            # The socket is full: the worker reads no more requests until its answers are taken, so
            # read them here while waiting for room.
            deadline = deadline or time.monotonic() + _SEND_TIMEOUT_S
            remaining = max(0.0, deadline - time.monotonic())
            readable, writable, _ = select.select([worker.sock], [worker.sock], [], remaining)
            if not readable and not writable:
                raise TimeoutError(f"no room for a request in {_SEND_TIMEOUT_S:.0f} s")
            if readable and worker.read_lock.acquire(blocking=False):
                try:
                    self._read_answers(worker)
                finally:
                    worker.read_lock.release()
            if worker.dead:
                raise ConnectionError("the encoder process ended")

    # ---------- reading answers ----------
    def _read_answers(self, worker: _Worker) -> None:
        """Read what the worker has sent so far without blocking (with its read lock held); hand over
        complete answers. The end of the socket retires the worker."""
        while not worker.dead:
            into = worker.body_view[worker.body_got:] if worker.body is not None else worker.inbox[worker.filled:]
            try:
                n = worker.sock.recv_into(into, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._ended(worker, str(error))
                return
            if n == 0:
                self._ended(worker, "died")
                return
            if worker.body is not None:
                worker.body_got += n
                if worker.body_got == worker.body_view.nbytes:
                    body, worker.body = worker.body, None
                    self._hand_over(worker, body, worker.cpu)
            else:
                worker.filled += n
                self._unpack_inbox(worker)
            if n < into.nbytes:
                return  # the socket is empty for now

    def _unpack_inbox(self, worker: _Worker) -> None:
        """Hand over the complete answers in the inbox; start the body of a longer one."""
        inbox, start = worker.inbox, 0
        while worker.filled - start >= _ANSWER.size:
            kind, rows, columns, size, cpu = _ANSWER.unpack_from(inbox, start)
            body: FloatMatrix | bytearray
            if kind == _ROWS:
                body = np.empty((rows, columns), np.float32)
                view = body.data.cast("B")
            else:
                body = bytearray(size)
                view = memoryview(body)
            begin = start + _ANSWER.size
            have = min(size, worker.filled - begin)
            view[:have] = inbox[begin:begin + have]
            start = begin + have
            if have < size:
                worker.body, worker.body_view, worker.body_got, worker.cpu = body, view, have, cpu
                break
            self._hand_over(worker, body, cpu)
        left = worker.filled - start
        if left and start:
            inbox[:left] = inbox[start:worker.filled]
        worker.filled = left

    def _hand_over(self, worker: _Worker, body: FloatMatrix | bytearray, cpu: float) -> None:
        with self._lock:
            if not worker.pending:
                return  # retired meanwhile by another thread: its callers were told
            waiter = worker.pending.popleft()
            worker.busy -= waiter.size
            self.worker_cpu_seconds += cpu
        if isinstance(body, np.ndarray):
            waiter.finish(body, None)
            return
        try:
            error = pickle.loads(body)
        except Exception as unreadable:  # noqa: BLE001 - e.g. an exception class this process cannot import
            error = RuntimeError(f"encoder process raised an exception that cannot be read here: {unreadable}")
        waiter.finish(None, error)

    def _on_readable(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        # Another thread reading this socket finishes soon; the loop calls again while data is waiting.
        if worker.read_lock.acquire(blocking=False):
            try:
                self._read_answers(worker)
            finally:
                worker.read_lock.release()
        if worker.dead:
            self._close_if_unused(worker)  # stops this loop watching the socket

    def _watch(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Make the loop read the worker's answers (once per loop and worker) and fail its late requests."""
        if loop not in worker.loops:
            with self._lock:
                if worker.dead:
                    return  # the request failed already
                for old in [old for old in worker.loops if old.is_closed()]:
                    del worker.loops[old]
                worker.loops[loop] = threading.get_ident()
            loop.add_reader(worker.fd, self._on_readable, worker, loop)
        if loop not in self._watchdogs:
            for old in [old for old in self._watchdogs if old.is_closed()]:
                del self._watchdogs[old]  # closed with requests in flight: its timer never ran
            self._watchdogs[loop] = loop.call_later(_WATCHDOG_PERIOD_S, self._watchdog, loop)

    def _watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail this loop's requests past their deadline; look again later while it has requests."""
        now = time.monotonic()
        with self._lock:
            waiting = [waiter for worker in self._workers for waiter in worker.pending
                       if waiter.loop is loop and not waiter.future.done()]
        for waiter in waiting:
            if now > waiter.deadline:
                waiter.settle(None, TimeoutError())
        if any(not waiter.future.done() for waiter in waiting):
            self._watchdogs[loop] = loop.call_later(_WATCHDOG_PERIOD_S, self._watchdog, loop)
        else:
            del self._watchdogs[loop]

    def _wait_here(self, worker: _Worker, waiter: _Waiter) -> None:
        """Blocking wait for an answer, reading the worker's socket in this thread."""
        while not waiter.future.done():
            remaining = waiter.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready = multiprocessing.connection.wait([worker.sock, worker.process.sentinel],
                                                    timeout=min(remaining, _SYNC_POLL_S))
            if ready:
                with worker.read_lock:
                    self._read_answers(worker)
                if worker.process.sentinel in ready:  # ended, even if its socket did not
                    self._ended(worker, "died")

    # ---------- encoding ----------
    def _timeout(self, batch: list[str]) -> float:
        return self.timeout_s + 0.05 * len(batch)

    async def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Rows of ``Embedder.encode(texts)`` computed in a worker process."""
        batch = list(texts)
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            worker, waiter = self._send(batch, loop)
            try:
                self._watch(worker, loop)
                future = waiter.future
                assert isinstance(future, asyncio.Future)
                return await future
            except (_Lost, TimeoutError) as error:
                self._after_failure(worker, batch, error, last_attempt=attempt == 2)
            finally:
                self._release(worker)
        raise AssertionError("unreachable")

    def encode_sync(self, texts: Sequence[str]) -> FloatMatrix:
        """Blocking variant of ``encode`` (same retry and timeout rules)."""
        batch = list(texts)
        for attempt in (1, 2):
            worker, waiter = self._send(batch, None)
            try:
                self._wait_here(worker, waiter)
                rows: FloatMatrix = waiter.future.result()
                return rows
            except (_Lost, TimeoutError) as error:
                self._after_failure(worker, batch, error, last_attempt=attempt == 2)
            finally:
                self._release(worker)
        raise AssertionError("unreachable")

    def _after_failure(self, worker: _Worker, batch: list[str], error: Exception, *, last_attempt: bool) -> None:
        """A pass failed: raise EncoderUnavailable unless the pass may run once more.

        A dead worker (_Lost) gets one retry; a worker that gave no answer is killed, not retried."""
        if isinstance(error, TimeoutError):
            self._kill(worker)
            raise EncoderUnavailable(
                f"encoder process gave no answer for {len(batch)} texts in {self._timeout(batch):.0f} s; "
                "it was restarted") from error
        if last_attempt:
            raise EncoderUnavailable(f"encoder process died twice while encoding {len(batch)} texts "
                                     f"({error})") from error


__all__ = ["EncoderPool", "EncoderUnavailable", "FloatMatrix"]
