"""poolbench's built-in scenarios, one per file; installed as the package ``poolbench.scenarios``."""
