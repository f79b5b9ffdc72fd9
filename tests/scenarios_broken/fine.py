from poolbench import Scenario


class Fine(Scenario):
    name = "fine"

    def new(self):
        return []

    def use(self, obj):
        pass
