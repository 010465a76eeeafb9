"""Pods as `tether pod` groups them: containers sharing kube play's pod label."""
from __future__ import annotations

from tether.cli.commands_pod import group_pods


def item(name: str, state: str, pod: str | None, **labels: str) -> dict:
    if pod is not None:
        labels = {**labels, "io.tether.kube.pod": pod, "io.tether.kube": "1"}
    return {"Id": name * 4, "Names": [f"/{name}"], "State": state, "Labels": labels}


def test_group_pods() -> None:
    pods = group_pods([item("b-2", "exited", "b", app="b"), item("a-1", "running", "a"),
                       item("b-1", "running", "b", app="b"), item("lone", "running", None)])
    assert list(pods) == ["a", "b"]
    assert pods["a"]["Status"] == "Running"
    assert pods["b"] == {"Name": "b", "Labels": {"app": "b"}, "Status": "Degraded",
                         "Containers": [{"Id": "b-1" * 4, "Name": "b-1", "State": "running"},
                                        {"Id": "b-2" * 4, "Name": "b-2", "State": "exited"}]}
    assert group_pods([item("x", "created", "x")])["x"]["Status"] == "Exited"
