"""``python -m obliviate.service serve|token ...``: the service commands, also before ``obliviate serve``
is registered in the main command line."""

from obliviate.cli import main
from obliviate.cli import service as _service  # noqa: F401  (registers serve and token)

if __name__ == "__main__":
    main()
