"""The API version rule the routes compare by (volume prune, attach and logs content types,
cluster volumes; create's body: tests/unit/test_apitypes.py)."""
from tether.api.http import api_version


def test_api_version():
    assert api_version("1.41") == (1, 41)
    assert api_version(None) == (1, 44)
