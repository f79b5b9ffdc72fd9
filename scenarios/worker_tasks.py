"""Worker threads consume task objects from a queue; the tasks are pooled or allocated fresh."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench import Scenario


class Task:
    __slots__ = ("done", "payload", "result", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.payload = [0] * 16
        self.result = 0
        self.done: queue.SimpleQueue[None] | None = None


class WorkerTasks(Scenario):
    """Submit tasks to a pool of worker threads; each worker returns its task after running it."""

    name = "worker-tasks"
    description = "submit task objects to `workers` consumer threads, at most `window` in flight"
    params = {"workers": 2, "window": 32}

    def setup(self) -> None:
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.workers = [
            threading.Thread(target=self._work, daemon=True, name=f"poolbench-task-worker-{i}")
            for i in range(self.params["workers"])
        ]
        for worker in self.workers:
            worker.start()

    def teardown(self) -> None:
        for _ in self.workers:
            self.inbox.put(None)
        for worker in self.workers:
            worker.join(timeout=5)

    def new(self) -> Task:
        return Task()

    def reset(self, task: Task) -> None:
        task.seq = 0
        task.result = 0
        task.done = None

    def _work(self) -> None:
        get = self.inbox.get
        while True:
            item = get()
            if item is None:
                return
            task, put = item
            total = 0
            for value in task.payload:
                total += value * value
            task.result = total
            done = task.done
            if put is not None:
                put(task)
            done.put(None)

    def run(self, n: int, get: Callable[[], Any], put: Callable[[Any], None] | None) -> None:
        # Tasks go out in windows of at most `window` and each window is waited for: a service
        # bounds what it has in flight. It also keeps an operation the same whatever `n` is: with
        # all n tasks in flight at once, time, GC work and the pool's size grew with the
        # calibrated n, and two runs that calibrated differently read 20-30% apart.
        done: queue.SimpleQueue[None] = queue.SimpleQueue()
        submit, wait = self.inbox.put, done.get

        def tasks(size: int) -> None:
            for _ in repeat(None, size):
                task = get()
                task.seq = 1
                task.done = done
                submit((task, put))
            for _ in repeat(None, size):
                wait()

        window: int = self.params["window"]
        full, rest = divmod(n, window)
        for _ in repeat(None, full):
            tasks(window)
        tasks(rest)
