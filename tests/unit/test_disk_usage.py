"""system df: dockerd's size rules and the docker CLI's df rendering."""
from __future__ import annotations

import os
from collections import Counter

from tether.cli.dfformat import summary_contexts, summary_json, verbose_text
from tether.engine.diskusage import (directory_size, image_items, layers_size, shared_sizes,
                                     with_sizes)


def test_directory_size_counts_files_and_symlinks_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "d" / "a", tmp_path / "hard")  # same inode: once
    (tmp_path / "empty").write_bytes(b"")
    os.symlink("d/a", tmp_path / "link")  # its own length, never followed
    os.symlink("d", tmp_path / "dirlink")
    assert directory_size(tmp_path) == 100 + len("d/a") + len("d")


def test_directory_size_of_nothing(tmp_path):
    assert directory_size(tmp_path / "missing") == 0


def test_shared_and_total_layer_sizes():
    layers_of = {"a": ["l1", "l2"], "b": ["l1"], "c": ["l3", "l3"]}
    size = {"l1": 10, "l2": 5, "l3": 7}.__getitem__
    assert shared_sizes(layers_of, size) == {"a": 10, "b": 10, "c": 0}
    assert layers_size(layers_of, size) == 22


def test_with_sizes_omits_a_zero_rw():
    assert with_sizes({}, 0, 50) == {"SizeRootFs": 50}
    assert with_sizes({}, 7, 50) == {"SizeRw": 7, "SizeRootFs": 57}


def test_image_items_fill_df_counts():
    items = image_items([{"Id": "x", "Containers": -1, "SharedSize": -1}], Counter({"x": 2}), {})
    assert items == [{"Id": "x", "Containers": 2, "SharedSize": 0}]


DF = {
    "LayersSize": 2000,
    "Images": [{"Id": "sha256:" + "a" * 64, "RepoTags": ["busybox:latest"], "Created": 0,
                "Size": 2000, "SharedSize": 500, "Containers": 1},
               {"Id": "sha256:" + "b" * 64, "RepoTags": [], "Created": 0, "Size": 600,
                "SharedSize": 500, "Containers": 0}],
    "Containers": [{"Id": "c" * 64, "Image": "busybox", "Command": "sleep 1", "Created": 0,
                    "State": "running", "Status": "Up 2 seconds", "Names": ["/up"],
                    "SizeRootFs": 2000},
                   {"Id": "d" * 64, "Image": "busybox", "Command": "true", "Created": 0,
                    "State": "exited", "Status": "Exited (0)", "Names": ["/down"],
                    "SizeRw": 30726, "SizeRootFs": 32726, "Mounts": [{"Type": "volume"}]}],
    "Volumes": [{"Name": "v1", "UsageData": {"Size": 100, "RefCount": 1}},
                {"Name": "v2", "UsageData": {"Size": 300, "RefCount": 0}},
                {"Name": "v3", "UsageData": None}],
    "BuildCache": [], "BuilderSize": 0,
}


def test_summary_rules():
    rows = {c["Type"]: c for c in summary_contexts(DF)}
    # an image in use keeps its unique size (2000 - 500); the rest of the layers is reclaimable
    assert rows["Images"] == {"Type": "Images", "TotalCount": "2", "Active": "1",
                              "Size": "2kB", "Reclaimable": "500B (25%)"}
    assert rows["Containers"]["Reclaimable"] == "30.73kB (100%)"
    assert rows["Containers"]["Active"] == "1"
    # a volume without usage data counts in the total but not in the sizes
    assert rows["Local Volumes"] == {"Type": "Local Volumes", "TotalCount": "3", "Active": "1",
                                     "Size": "400B", "Reclaimable": "300B (75%)"}
    assert rows["Build Cache"]["Reclaimable"] == "0B"


def test_summary_without_anything():
    rows = summary_contexts({"Images": [], "Containers": [], "Volumes": [], "BuildCache": None})
    assert [r["Reclaimable"] for r in rows] == ["0B"] * 4


def test_summary_json_lines_have_sorted_keys():
    first = summary_json(DF).splitlines()[0]
    assert first == ('{"Active":"1","Reclaimable":"500B (25%)","Size":"2kB","TotalCount":"2",'
                     '"Type":"Images"}')


def test_verbose_rows():
    text = verbose_text(DF, now=10)
    assert "busybox      latest    aaaaaaaaaaaa   10 seconds ago   2kB       500B          1.5kB         1\n" in text
    assert "<none>       <none>    bbbbbbbbbbbb" in text
    assert "dddddddddddd   busybox   \"true\"      1               30.7kB    10 seconds ago" in text
    assert "v3            N/A       N/A\n" in text
    assert text.endswith("Build cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   "
                         "LAST USED   USAGE     SHARED\n")


def test_verbose_json_is_one_go_object():
    import json

    from tether.cli.dfformat import go_json, verbose_json

    df = {**DF, "Volumes": []}
    df["Containers"] = [{**DF["Containers"][1], "Command": "sh -c 'a > b && c'"}]
    text = verbose_json(df, now=10)
    assert text.startswith('{"Images":[{"Containers":"1",') and not text.endswith("\n")
    assert "\\u003e b \\u0026\\u0026 c" in text  # Go's HTML-safe escaping
    parsed = json.loads(text)
    assert list(parsed) == ["Images", "Containers", "Volumes", "BuildCache"]
    assert parsed["Containers"][0]["Size"] == "30.7kB" and parsed["Containers"][0]["Platform"] is None
    assert go_json({"b": 1, "a": "<"}) == '{"a":"\\u003c","b":1}'
    volumes = json.loads(verbose_json(DF, now=10))["Volumes"]
    assert [(v["Name"], v["Links"], v["Size"]) for v in volumes] == \
        [("v1", "1", "100B"), ("v2", "0", "300B"), ("v3", "N/A", "N/A")]
    assert volumes[0]["Availability"] == volumes[0]["Group"] == volumes[0]["Status"] == "N/A"


def test_directory_size_counts_hard_links_once_and_skips_dirs(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "sub" / "a", tmp_path / "b")
    os.symlink("sub/a", tmp_path / "link")
    assert directory_size(tmp_path) == 100 + len("sub/a")
