"""The `tether volume` commands' pure parts: contexts, key=value flags, prune texts."""
from tether.cli import commands_volume as cv
from tether.cli.runopts import split_map


def test_volume_context_is_dockers_volume_context_in_key_order():
    item = {"Name": "v", "Driver": "local", "Scope": "local", "Mountpoint": "/m",
            "Labels": {"z": "", "a": "b"}, "Options": None, "CreatedAt": "x"}
    context = cv.volume_context(item)
    assert list(context) == sorted(context)
    assert context == {"Availability": "N/A", "Driver": "local", "Group": "N/A",
                       "Labels": "a=b,z=", "Links": "N/A", "Mountpoint": "/m", "Name": "v",
                       "Scope": "local", "Size": "N/A", "Status": "N/A"}
    assert cv.volume_context({**item, "Labels": None})["Labels"] == ""


def test_split_map_of_label_and_opt_flags():
    assert split_map(("a=b", "z", "o=x=y,z")) == {"a": "b", "z": "", "o": "x=y,z"}
    assert split_map(()) == {}


def test_prune_warning_follows_the_api_version():
    assert cv.prune_warning("1.44", False) == cv.ANONYMOUS_WARNING
    assert cv.prune_warning("1.44", True) == cv.ALL_WARNING
    assert cv.prune_warning("1.41", False) == cv.ALL_WARNING


def test_prune_report():
    assert cv.prune_report({"VolumesDeleted": None, "SpaceReclaimed": 0}) == "Total reclaimed space: 0B\n"
    assert cv.prune_report({"VolumesDeleted": ["a", "b"], "SpaceReclaimed": 1234567}) == (
        "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.235MB\n")


def test_template_view_shows_nil_maps_as_go_prints_them():
    volume = {"Name": "v", "Labels": None, "Options": None}
    assert cv.template_view(volume, "{{.Labels}}") == {"Name": "v", "Labels": {}, "Options": {}}
    assert cv.template_view(volume, "{{json .}}") == volume
    labelled = {"Name": "v", "Labels": {"a": "b"}, "Options": None}
    assert cv.template_view(labelled, "{{.Labels}}")["Labels"] == {"a": "b"}
