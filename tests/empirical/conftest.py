"""Fixtures shared by the method tests: the class-forget scenario's other classes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def other_classes(test_set):
    """Test examples of every class but 3 (the class the class-forget scenario removes)."""
    return test_set.subset(test_set.ids[test_set.y != 3])
