"""The API version rule of the volume routes (create's body: tests/unit/test_apitypes.py)."""
from tether.api.volumes import api_version


def test_api_version():
    assert api_version("1.41") == (1, 41)
    assert api_version(None) == (1, 44)
