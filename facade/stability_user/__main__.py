"""``python -m stability_user``: the same command line as ``stability-user``."""

from ._cli import run

if __name__ == "__main__":
    run()
