"""``python -m stability_user``: the same command line as ``stability-user``."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
