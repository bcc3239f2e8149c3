"""What a make target would run (`make -n`), as a user sees it from a shell.

The tests themselves run under `make test`, whose MAKEFLAGS and MAKELEVEL a child make inherits:
it would then print "make[1]: Entering directory" lines around the plan.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FROM_A_PARENT_MAKE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def planned(*arguments: str) -> str:
    """The commands `make -n ARGUMENTS` prints, run in the project's root as from a shell.

    A target make does not know prints nothing: the caller's assertion then names what is missing.
    """
    env = {name: value for name, value in os.environ.items() if name not in _FROM_A_PARENT_MAKE}
    return subprocess.run(["make", "-n", *arguments], cwd=ROOT, env=env, capture_output=True, text=True).stdout
