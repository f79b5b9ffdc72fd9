import sys

sys.stdout.write("x" * 10_000_000)  # 10 MB printed at import, on purpose
sys.stderr.write("y" * 1_000_000)
