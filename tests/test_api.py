"""The curated public API resolves, lazily."""

import subprocess
import sys

import pytest

import eureka_lab


@pytest.mark.parametrize("name", eureka_lab.__all__)
def test_every_public_name_resolves(name):
    assert getattr(eureka_lab, name) is not None


def test_import_is_cheap():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, eureka_lab; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
