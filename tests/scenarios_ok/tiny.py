"""Scenarios for the tests: cheap, and one of each way a scenario can go wrong."""

import os
import time

from poolbench import Scenario


class Tiny(Scenario):
    """A small list, filled and summed."""

    name = "tiny"
    params = {"size": 8}

    def new(self):
        return [0] * self.params["size"]

    def use(self, obj):
        obj[0] += 1


class Raises(Scenario):
    name = "raises"

    def new(self):
        return []

    def use(self, obj):
        raise RuntimeError("scenario bug on purpose")


class Hangs(Scenario):
    name = "hangs"

    def new(self):
        return []

    def use(self, obj):
        time.sleep(3600)


class Dies(Scenario):
    name = "dies"

    def new(self):
        return []

    def use(self, obj):
        os._exit(7)


class Chatty(Scenario):
    """Prints on stdout: must not corrupt the worker's answer."""

    name = "chatty"

    def setup(self):
        print("hello from setup")

    def new(self):
        return []

    def use(self, obj):
        pass


class Killed(Scenario):
    """Dies by a signal, as the OOM killer would end it."""

    name = "killed"

    def new(self):
        return []

    def use(self, obj):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class Greedy(Scenario):
    """Grows without bound."""

    name = "greedy"

    def new(self):
        return []

    def use(self, obj):
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))


class Bimodal(Scenario):
    """Every other worker process makes the pooled path slow, the others the unpooled one: two
    modes of the speedup on either side of 1, by construction.

    A stand-in for heap layouts that make a copy 10x slower in some processes and not others (the
    fresh buffer in some, the pooled one in others).
    """

    name = "bimodal"
    params = {"counter": ""}

    def setup(self):
        path = self.params["counter"]
        with open(path, "a+") as f:  # one line per process started
            f.write("x\n")
            f.seek(0)
            self.slow_pool = len(f.readlines()) % 2 == 0

    def new(self):
        if not self.slow_pool:
            sum(range(3000))
        return [0] * 8

    def reset(self, obj):  # the pools' hook: the pooled path only
        if self.slow_pool:
            sum(range(3000))

    def use(self, obj):
        obj[0] += 1


class BigBatch(Scenario):
    """16 buffers of 8 MiB alive at once: about 128 MiB per path, pooled or not."""

    name = "big-batch"
    params = {"batch": 16, "size": 8 * 1024 * 1024}

    def new(self):
        return bytearray(self.params["size"])

    def use(self, buf):
        buf[0] = 1


class Detached(Scenario):
    """Starts a child in a session of its own (it outlives any process-group kill), then hangs."""

    name = "detached"

    def setup(self):
        import subprocess
        import sys

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)

    def new(self):
        return []

    def use(self, obj):
        time.sleep(3600)


class LeavesThread(Scenario):
    """Measures normally, but leaves a non-daemon thread and a child behind when done."""

    name = "leaves-thread"

    def teardown(self):
        import subprocess
        import sys
        import threading

        threading.Thread(target=time.sleep, args=(60,)).start()
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def new(self):
        return []

    def use(self, obj):
        pass


class Segfaults(Scenario):
    name = "segfaults"

    def new(self):
        return []

    def use(self, obj):
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
