"""Shared helpers and test doubles for the tests, imported as ``support.<module>`` (pytest
puts ``tests/`` on ``sys.path``). Test modules import from here and from ``conftest``, never
from one another."""
