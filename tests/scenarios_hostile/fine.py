from poolbench import Scenario


class StillFine(Scenario):
    name = "still-fine"
    params = {"ratio": 0.5}

    def new(self):
        return []

    def use(self, obj):
        pass
