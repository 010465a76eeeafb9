"""The Kubernetes YAML -> Engine API plan of `tether kube play`, and its refusals."""
from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from test_kube_generate import seed_pair
from tether.rules.kube_generate import generate
from tether.rules.kube_play import PlayError, plan, service_variables


def pod(name: str = "p", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "c", "image": "busybox"}])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"containers": containers, **spec}}


def test_generated_seed_pair_plays_back() -> None:
    p = plan(generate(seed_pair(), {}, services=True).documents, "net")
    assert p.container_names() == ["db-db", "web-web"]
    db, web = p.pods
    assert db.containers[0].body["NetworkingConfig"] == {
        "EndpointsConfig": {"net": {"Aliases": ["db"]}}}
    body = web.containers[0].body
    assert body["HostConfig"]["NetworkMode"] == "net"
    assert body["HostConfig"]["PortBindings"] == {"5000/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert body["Cmd"] == ["python", "app.py"] and body["WorkingDir"] == "/opt/webapp"
    assert "DB_NAME=/web/db" in body["Env"] and "DB_ENV_PG_VERSION=15" in body["Env"]
    assert body["Labels"] == {"app": "web", "io.tether.kube.pod": "web", "io.tether.kube": "1"}
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    env = service_variables(p.services, {"db": "10.1.0.2"})
    assert env["DB_PORT_5432_TCP_ADDR"] == "10.1.0.2" and env["DB_PORT"] == "tcp://10.1.0.2:5432"
    assert not any(k.startswith("WEB_PUBLISHED") for k in env)  # no address for it yet


@pytest.mark.parametrize("doc,message", [
    (pod(containers=[{"name": "c", "image": "b", "lifecycle": {}}]),
     "Pod p: unsupported field spec.containers[0].lifecycle"),
    (pod(nodeSelector={"a": "b"}), "Pod p: unsupported field spec.nodeSelector"),
    ({**pod(), "metadata": {"name": "p", "namespace": "x"}}, "Pod p: unsupported field metadata.namespace"),
    ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}},
     "document 1: unsupported kind 'Job' (apiVersion 'batch/v1')"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
      "spec": {"selector": {"app": "p"}, "ports": [{"port": 80, "targetPort": 8080}]}},
     "Service s: spec.ports[0].targetPort must equal port"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
      "spec": {"type": "LoadBalancer", "selector": {"app": "p"}, "ports": [{"port": 80}]}},
     "Service s: unsupported spec.type 'LoadBalancer'"),
    (pod(containers=[{"name": "c", "image": "b", "env": [{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "cm", "key": "k"}}}]}]),
     "Pod p: spec.containers[0].env[0].valueFrom.configMapKeyRef: ConfigMap 'cm' is not in the file"),
    (pod(containers=[{"name": "c", "image": "b", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]),
     "Pod p: spec.containers[0].volumeMounts[0]: no volume named 'v' in spec.volumes"),
    (pod(containers=[{"name": "c", "image": "b", "resources": {"limits": {"memory": "1.5Gi"}}}]),
     "quantity '1.5Gi' is not supported"),
    (pod(containers=[{"name": "c", "image": "b", "ports": [{"containerPort": "80"}]}]),
     "Pod p: spec.containers[0].ports[0].containerPort must be an integer"),
    (pod(containers=[{"name": "c", "image": "b", "tty": "yes"}]),
     "Pod p: spec.containers[0].tty must be true or false"),
    ({**pod(), "metadata": {"name": "p", "labels": {"v": 1}}},
     "Pod p: metadata.labels must be a map of strings"),
    (pod(restartPolicy="Sometimes"),
     "Pod p: spec.restartPolicy must be Always, OnFailure or Never, not 'Sometimes'"),
    (pod(containers=[{"name": "c", "image": "b", "env": [{"value": "x"}]}]),
     "required field 'name' is missing"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": ["x"]},
     "Pod (document 1): metadata must be an object"),
])
def test_refusals_name_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PlayError, match=re.escape(message)):
        plan([doc])


def test_deployment_replicas_configmaps_secrets_and_volumes() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"A": "1"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"PW": base64.b64encode(b"hunter2").decode()}, "stringData": {"U": "me"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    container = {
        "name": "app", "image": "busybox", "command": ["sh"], "args": ["-c", "x"],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PW"}}},
                {"name": "U", "valueFrom": {"secretKeyRef": {"name": "s", "key": "U"}}},
                {"name": "O", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k",
                                                                "optional": True}}}],
        "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
        "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "true"]}, "periodSeconds": 5},
        "securityContext": {"runAsUser": 1000, "runAsGroup": 100,
                            "capabilities": {"add": ["NET_ADMIN"]}},
        "volumeMounts": [{"name": "d", "mountPath": "/d"}, {"name": "t", "mountPath": "/t"},
                         {"name": "e", "mountPath": "/e"}, {"name": "h", "mountPath": "/h",
                                                            "readOnly": True}]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
                           "template": {"metadata": {"labels": {"app": "app"}}, "spec": {
                               "containers": [container],
                               "volumes": [
                                   {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                                   {"name": "t", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                                   {"name": "e", "emptyDir": {}},
                                   {"name": "h", "hostPath": {"path": "/srv"}}]}}}}
    p = plan([cm, secret, claim, deployment])
    assert p.volumes == ["data"]
    assert p.notes == ["PersistentVolumeClaim data: a local volume, its storage request 1Gi "
                       "is not enforced"]
    assert p.container_names() == ["app-1-app", "app-2-app"]
    body = p.pods[0].containers[0].body
    assert body["Entrypoint"] == ["sh"] and body["Cmd"] == ["-c", "x"]
    assert body["Env"] == ["CM_A=1", "PW=hunter2", "U=me"]
    assert body["User"] == "1000:100"
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                   "Timeout": 1_000_000_000, "Retries": 3}
    host = body["HostConfig"]
    assert host["Memory"] == 64 * 1024**2 and host["NanoCpus"] == 250_000_000
    assert host["CapAdd"] == ["NET_ADMIN"]
    assert host["RestartPolicy"] == {"Name": "always"}
    assert host["Mounts"] == [
        {"Target": "/d", "ReadOnly": False, "Type": "volume", "Source": "data"},
        {"Target": "/t", "ReadOnly": False, "Type": "tmpfs", "TmpfsOptions": {"SizeBytes": 16 * 1024**2}},
        {"Target": "/e", "ReadOnly": False, "Type": "volume"},
        {"Target": "/h", "ReadOnly": True, "Type": "bind", "Source": "/srv"}]


def test_deployment_selector_must_match() -> None:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "y"}},
                                 "spec": {"containers": [{"name": "c", "image": "b"}]}}}}
    with pytest.raises(PlayError, match="does not match"):
        plan([doc])


def test_a_pods_further_containers_join_the_first_ones_namespaces() -> None:
    p = plan([pod(hostname="h", hostAliases=[{"ip": "192.0.2.9", "hostnames": ["x"]}],
                  containers=[{"name": "a", "image": "b"}, {"image": "b", "ports": [
                      {"containerPort": 80, "hostPort": 8080}]}])], "net")
    assert p.container_names() == ["p-a", "p-1"]
    first, member = (c.body for c in p.pods[0].containers)
    assert first["HostConfig"]["NetworkMode"] == "net" and first["Hostname"] == "h"
    assert first["HostConfig"]["IpcMode"] == "shareable"
    assert first["HostConfig"]["ExtraHosts"] == ["x:192.0.2.9"]
    assert first["ExposedPorts"] == {"80/tcp": {}}
    assert first["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    host = member["HostConfig"]
    assert host["NetworkMode"] == host["IpcMode"] == "container:p-a"
    assert not {"Hostname", "ExposedPorts", "NetworkingConfig"} & set(member)
    assert not {"PortBindings", "ExtraHosts"} & set(host)
    assert member["Labels"] == first["Labels"]
    assert "PidMode" not in host and "PidMode" not in first["HostConfig"]
    assert p.notes == []


def test_share_process_namespace_joins_the_first_ones_pid_namespace() -> None:
    p = plan([pod(shareProcessNamespace=True, containers=[
        {"name": "a", "image": "b"}, {"name": "x", "image": "b"}, {"name": "y", "image": "b"}])])
    first, *members = (c.body for c in p.pods[0].containers)
    assert "PidMode" not in first["HostConfig"]
    assert [m["HostConfig"]["PidMode"] for m in members] == ["container:p-a"] * 2
    assert p.notes == ["Pod p: shareProcessNamespace: the pod's containers share the PID "
                       "namespace of p-a, whose process is its PID 1 (on Kubernetes the pod's "
                       "pause process is)"]
    with pytest.raises(PlayError, match="spec.shareProcessNamespace must be true or false"):
        plan([pod(shareProcessNamespace="yes")])


def test_a_generated_pod_of_two_plays_back_as_one() -> None:
    from test_kube_pods import member, owner

    app = owner(ExposedPorts={"80/tcp": {}},
                host={"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}})
    side = member("side", app, pid=True, ExposedPorts={"9000/tcp": {}})
    p = plan(generate([app, side], {}).documents, "net")
    assert p.container_names() == ["app-app", "app-side"]
    first, played = (c.body for c in p.pods[0].containers)
    assert first["HostConfig"]["IpcMode"] == "shareable"
    assert first["ExposedPorts"] == {"80/tcp": {}, "9000/tcp": {}}
    assert first["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    host = played["HostConfig"]
    assert host["NetworkMode"] == host["IpcMode"] == host["PidMode"] == "container:app-app"


def test_configmap_and_secret_volumes_are_filled_volumes_mounted_read_only() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
          "data": {"a.conf": "x=1", "b": "2"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "stringData": {"pw": "hunter2"}}
    doc = pod(containers=[{"name": "c", "image": "busybox", "volumeMounts": [
        {"name": "conf", "mountPath": "/etc/x"}, {"name": "sec", "mountPath": "/s"}]}],
        volumes=[{"name": "conf", "configMap": {"name": "cm", "items": [{"key": "a.conf",
                                                                         "path": "d/a.conf"}]}},
                 {"name": "sec", "secret": {"secretName": "s"}}])
    p = plan([cm, secret, doc])
    assert [(v.name, v.image, v.files) for v in p.files_volumes] == [
        ("p-conf", "busybox", {"d/a.conf": b"x=1"}), ("p-sec", "busybox", {"pw": b"hunter2"})]
    assert p.pods[0].containers[0].body["HostConfig"]["Mounts"] == [
        {"Target": "/etc/x", "ReadOnly": True, "Type": "volume", "Source": "p-conf"},
        {"Target": "/s", "ReadOnly": True, "Type": "volume", "Source": "p-sec"}]
    assert p.volume_names() == ["p-conf", "p-sec"]
    doc["spec"]["volumes"][0]["configMap"]["items"][0]["path"] = "../x"
    with pytest.raises(PlayError, match="item path '../x' must be relative"):
        plan([cm, secret, doc])
