"""ForgetRequest: what to forget, by whom it was asked, and by when (:mod:`obliviate.data.request`).

The request lives beside the data it is resolved against; this module keeps its public import path.
"""

from obliviate.data.request import *  # noqa: F403
from obliviate.data.request import __all__  # noqa: F401
