"""``python -m obliviate``: the same command line as the ``obliviate`` console script."""

from obliviate.cli import main

if __name__ == "__main__":
    main()
