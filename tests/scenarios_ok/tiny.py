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
