"""Rendering: tables, exports and plots. Nothing here measures; the library never imports it, and the
only other place that imports rich is ``poolbench.cli``."""
