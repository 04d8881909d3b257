"""The Example sections of public docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "perceptiq",
    "perceptiq._registry",
    "perceptiq.evaluation.stats",
    "perceptiq.evaluation.protocols",
    "perceptiq.ranking.paired",
    "perceptiq.ranking.active",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
