from poolbench import Scenario

raise ImportError("this scenario file is broken on purpose")


class Never(Scenario):
    name = "never"
