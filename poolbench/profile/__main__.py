"""``python -m poolbench.profile SPEC``: the profile's child process."""

import sys

from ._child import main

sys.exit(main(sys.argv[1]))
