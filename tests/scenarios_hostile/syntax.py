from poolbench import Scenario

class Broken(Scenario)  # a syntax error on line 3, on purpose
    name = "broken"
