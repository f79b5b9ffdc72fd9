"""Rendering: tables, exports (and plots). Nothing here measures; only this package imports rich."""
