"""`POST /volumes/create` body checks and the API version rule of the volume routes."""
import pytest

from tether.api.volumes import api_version, create_options
from tether.rules.errors import BadRequest


def test_api_version():
    assert api_version("1.41") == (1, 41)
    assert api_version(None) == (1, 44)


def test_create_options_accepts_dockers_fields():
    body = {"Name": "v", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": None,
            "ClusterVolumeSpec": None}
    assert create_options(body) is body


STRUCT = "json: cannot unmarshal {} into Go struct field CreateOptions.{} of type {}"


@pytest.mark.parametrize("body, message", [
    (None, "got EOF while reading request body"),
    ([], "json: cannot unmarshal array into Go value of type volume.CreateOptions"),
    ({"Name": 5}, STRUCT.format("number", "Name", "string")),
    ({"Driver": True}, STRUCT.format("bool", "Driver", "string")),
    ({"Labels": ["a"]}, STRUCT.format("array", "Labels", "map[string]string")),
    ({"DriverOpts": {"o": 1}}, STRUCT.format("number", "DriverOpts", "string")),
])
def test_create_options_errors(body, message):
    with pytest.raises(BadRequest) as info:
        create_options(body)
    assert info.value.message == message
