"""Containers joined by `container:` namespace modes become one pod in `kube generate`: the
grouping rule (rules/kube_pods.py), what it refuses, and the pod the mapping writes."""
from __future__ import annotations

from typing import Any

import pytest

from test_kube_generate import container, docs
from tether.rules.kube_generate import GenerateError, generate
from tether.rules.kube_pods import PodError, group


def member(name: str, owner: dict[str, Any], *, ipc: bool = True, pid: bool = False,
           by_id: bool = True, **config: Any) -> dict[str, Any]:
    """A container in `owner`'s network namespace, as inspect shows one: its NetworkMode holds
    the owner's full ID once started, IpcMode and PidMode the name given at create."""
    host = {"NetworkMode": f"container:{owner['Id'] if by_id else owner['Name'][1:]}",
            **config.pop("host", {})}
    if ipc:
        host["IpcMode"] = f"container:{owner['Name'][1:]}"
    if pid:
        host["PidMode"] = f"container:{owner['Name'][1:]}"
    c = container(name, host=host, networks={}, **config)
    c["Config"]["Hostname"] = owner["Config"]["Hostname"]  # a member has its owner's
    return c


def owner(name: str = "app", **config: Any) -> dict[str, Any]:
    host = {"IpcMode": "shareable", **config.pop("host", {})}
    return container(name, host=host, **config)


def the_pod(result: Any) -> dict[str, Any]:
    (pod,) = docs(result, "Pod")
    return pod


# --- the grouping rule -------------------------------------------------------------------------

def test_owner_and_members_are_one_group_owner_first() -> None:
    app = owner()
    side = member("side", app, pid=True)
    lone = container("lone")
    groups = group([side, lone, app])
    assert [[c["Name"] for c in g.containers] for g in groups] == [["/app", "/side"], ["/lone"]]
    assert groups[0].share_pid and not groups[1].share_pid
    assert groups[0].warnings == []


def test_a_chain_of_members_is_one_pod_with_the_first_owner() -> None:
    app = owner()
    a = member("a", app, ipc=False)
    b = member("b", a, ipc=False)  # in a's network, which is app's
    (g,) = group([b, a, app])
    assert [c["Name"] for c in g.containers] == ["/app", "/b", "/a"]


def test_ids_and_prefixes_find_the_owner() -> None:
    app = owner()
    side = container("side", host={"NetworkMode": f"container:{app['Id'][:12]}"}, networks={})
    (g,) = group([side, app])
    assert g.owner is app


def test_a_member_without_its_owner_is_refused_naming_it() -> None:
    app = owner()
    side = member("side", app)
    with pytest.raises(PodError, match=r"^side joins the network namespace of app \(--network "
                       r"container:app\): name app too, the two become one pod$"):
        group([side], [app])
    with pytest.raises(PodError, match=r"^side joins the network namespace of "
                       rf"{app['Id']} \(--network container:{app['Id']}\), which is no "
                       "container here$"):
        group([side])
    pid_only = container("p", host={"PidMode": "container:app"})
    with pytest.raises(PodError, match=r"^p joins the PID namespace of app \(--pid "
                       r"container:app\): name app too"):
        group([pid_only], [app])


@pytest.mark.parametrize("key,ns,flag", [("IpcMode", "IPC", "--ipc"), ("PidMode", "PID", "--pid")])
def test_sharing_ipc_or_pid_without_the_network_is_refused(key: str, ns: str, flag: str) -> None:
    app = owner()
    other = container("other", host={key: "container:app"})
    with pytest.raises(PodError) as caught:
        group([app, other])
    assert str(caught.value) == (
        f"other shares the {ns} namespace of app ({flag} container:app) but not its network "
        "namespace: the containers of a Kubernetes pod share both, and two pods would share "
        "neither; run it with --network container:app too")


def test_a_member_sharing_only_the_network_gets_the_ipc_namespace_too() -> None:
    app = owner()
    (g,) = group([app, member("side", app, ipc=False)])
    assert g.warnings == ["side: joins the network namespace of app but not its IPC namespace: "
                          "in a Kubernetes pod it shares app's IPC namespace too"]


def test_a_pid_namespace_shared_by_some_is_shared_by_all() -> None:
    app = owner()
    (g,) = group([app, member("a", app, pid=True), member("b", app)])
    assert g.share_pid
    assert g.warnings == [
        "app: shares its PID namespace only with a: in pod app every container shares one "
        "(shareProcessNamespace: true)",
        "a: shares its PID namespace only with app: in pod app every container shares one "
        "(shareProcessNamespace: true)",
        "b: has a PID namespace of its own: in pod app every container shares one "
        "(shareProcessNamespace: true)"]


def test_a_circle_of_network_modes_is_refused() -> None:
    a = container("a", host={"NetworkMode": "container:b"})
    b = container("b", host={"NetworkMode": "container:a"})
    with pytest.raises(PodError, match="the network modes of a, b form a circle"):
        group([a, b])


# --- the pod generate writes -------------------------------------------------------------------

def test_one_pod_holds_owner_and_member() -> None:
    app = owner(Cmd=["httpd"], ExposedPorts={"80/tcp": {}},
                host={"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}})
    side = member("side", app, pid=True, Image="alpine", Cmd=["sleep", "9"],
                  ExposedPorts={"80/tcp": {}, "9000/tcp": {}})
    result = generate([side, app], {})
    assert result.warnings == []
    pod = the_pod(result)
    assert pod["metadata"] == {"name": "app", "labels": {"app": "app"}}
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "side"]
    assert spec["shareProcessNamespace"] is True
    assert spec["restartPolicy"] == "Never" and "hostname" not in spec
    # one network namespace: a port is declared once, on the first container that has it
    assert spec["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "hostPort": 8080}]
    assert spec["containers"][1]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9000, "protocol": "TCP"}]
    assert spec["containers"][1]["args"] == ["sleep", "9"]


def test_a_pod_without_pid_sharing_says_nothing_of_it() -> None:
    app = owner()
    spec = the_pod(generate([app, member("side", app)], {}))["spec"]
    assert "shareProcessNamespace" not in spec
    assert len(spec["containers"]) == 2


def test_services_select_the_pod_of_a_member() -> None:
    db = owner("db", ExposedPorts={"5432/tcp": {}},
               networks={"net": {"Aliases": ["database"]}})
    exporter = member("exporter", db, ExposedPorts={"9187/tcp": {}})
    web = container("web", host={"Links": ["/db:/web/db", "/exporter:/web/metrics"]})
    result = generate([web, exporter, db], {"net": {}})
    services = {s["metadata"]["name"]: s["spec"] for s in docs(result, "Service")}
    assert {name: spec["selector"] for name, spec in services.items()} == {
        "database": {"app": "db"}, "db": {"app": "db"}, "metrics": {"app": "db"}}
    assert services["metrics"]["ports"] == [{"port": 9187, "targetPort": 9187, "protocol": "TCP"}]
    # the linked pod comes before the pod that links to it
    assert [p["metadata"]["name"] for p in docs(result, "Pod")] == ["db", "web"]


def test_volumes_of_the_pod_have_one_name_each() -> None:
    claim = {"Type": "volume", "Name": "data", "Destination": "/data", "RW": True}
    app = owner(mounts=[claim, {"Type": "bind", "Source": "/srv", "Destination": "/srv"}],
                host={"Tmpfs": {"/run": ""}})
    side = member("side", app, mounts=[{**claim, "RW": False},
                                       {"Type": "bind", "Source": "/etc/x", "Destination": "/x"}],
                  host={"Tmpfs": {"/cache": "size=1m"}})
    spec = the_pod(generate([app, side], {}))["spec"]
    assert [v["name"] for v in spec["volumes"]] == [
        "data", "host-1", "tmpfs-opt-0", "host-4", "tmpfs-opt-3"]
    assert [m["name"] for m in spec["containers"][1]["volumeMounts"]] == [
        "data", "host-4", "tmpfs-opt-3"]
    assert spec["containers"][1]["volumeMounts"][0]["readOnly"] is True


def test_pod_level_fields_are_the_owners_and_a_members_differences_are_reported() -> None:
    app = owner(Labels={"tier": "web", "role": "main"}, StopTimeout=30,
                host={"RestartPolicy": {"Name": "always"}})
    side = member("side", app, Labels={"tier": "web", "role": "sidecar"},
                  host={"RestartPolicy": {"Name": "no"}, "PidMode": "host"})
    result = generate([app, side], {})
    pod = the_pod(result)
    assert pod["metadata"]["annotations"] == {"role": "main", "tier": "web"}
    assert (pod["spec"]["restartPolicy"], pod["spec"]["terminationGracePeriodSeconds"]) == (
        "Always", 30)
    assert "hostPID" not in pod["spec"]
    assert result.warnings == [
        "side: label role=sidecar is not carried: the pod's annotation has app's value",
        "side: restart policy 'no' is not carried: a pod has one, app's ('always')",
        "side: pod field hostPID: its own value (True) is not carried, the pod has app's",
        "side: pod field terminationGracePeriodSeconds: its own value (unset) is not carried, "
        "the pod has app's"]


def test_deployment_of_a_pod_of_two() -> None:
    app = owner()
    result = generate([app, member("side", app, pid=True)], {}, kind="deployment")
    (dep,) = docs(result, "Deployment")
    template = dep["spec"]["template"]["spec"]
    assert [c["name"] for c in template["containers"]] == ["app", "side"]
    assert template["shareProcessNamespace"] is True


def test_generate_turns_the_refusal_into_its_error() -> None:
    app = owner()
    with pytest.raises(GenerateError, match="name app too"):
        generate([member("side", app)], {}, linked={"app": app})


# --- pods kube play made -----------------------------------------------------------------------

def played(pod: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two containers `kube play` makes of a pod of containers server and client."""
    labels = {"app": pod, "io.tether.kube.pod": pod, "io.tether.kube": "1"}
    first = owner(f"{pod}-server", Labels=labels)
    return first, member(f"{pod}-client", first, Labels=labels)


def test_a_played_pod_generates_under_its_own_names_and_plays_back_as_before() -> None:
    from tether.rules.kube_play import plan

    first, second = played("duo")
    result = generate([first, second], {})
    pod = the_pod(result)
    assert pod["metadata"]["name"] == "duo"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["server", "client"]
    assert plan(result.documents).container_names() == ["duo-server", "duo-client"]


def test_a_played_pod_and_a_container_of_its_name_are_refused() -> None:
    with pytest.raises(GenerateError, match="pod duo and container duo would both be pod 'duo'"):
        generate([*played("duo"), container("duo")], {})
