"""Shared helpers and test doubles for the tests, imported as ``support.<module>`` (pytest
puts ``tests/`` on ``sys.path``). Test modules import helpers from here, never from one
another nor from ``conftest`` (which holds the fixtures)."""
