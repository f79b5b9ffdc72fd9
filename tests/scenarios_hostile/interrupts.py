raise KeyboardInterrupt  # on purpose
