"""The inspect-JSON -> Kubernetes mapping of `tether kube generate`, field by field."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from tether.rules.kube_env import env_name, service_env
from tether.rules.kube_generate import GenerateError, generate, with_comments
from tether.rules.kube_names import NameCollision, NameTable, dns1035, is_dns1035


def container(name: str, **config: Any) -> dict[str, Any]:
    host = config.pop("host", {})
    networks = config.pop("networks", {"bridge": {"Aliases": None}})
    mounts = config.pop("mounts", [])
    cid = (name.encode().hex() * 64)[:64]
    return {"Id": cid, "Name": "/" + name,
            "Config": {"Image": "busybox", "Hostname": cid[:12], "Env": ["PATH=/bin"], **config},
            "HostConfig": {"NetworkMode": "default", "RestartPolicy": {"Name": "no"}, **host},
            "NetworkSettings": {"Networks": networks}, "Mounts": mounts}


def docs(result: Any, kind: str) -> list[dict[str, Any]]:
    return [d for d in result.documents if d["kind"] == kind]


def only_container(result: Any) -> dict[str, Any]:
    (pod,) = docs(result, "Pod")
    (c,) = pod["spec"]["containers"]
    return c


# --- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,label", [
    ("db", "db"), ("My_DB", "my-db"), ("compose_web_1", "compose-web-1"), ("a..b", "a-b"),
    ("1st", "x-1st"), ("-x-", "x"), ("_", "x"), ("a" * 80, "a" * 63),
    ("a" * 62 + "_b", "a" * 62)])
def test_dns1035_mangling(name: str, label: str) -> None:
    assert dns1035(name) == label
    assert is_dns1035(label)


def test_colliding_names_are_refused_naming_both() -> None:
    table = NameTable("container")
    assert table.name("/my_db") == "my-db"
    assert table.name("my_db") == "my-db"
    with pytest.raises(NameCollision, match="'my_db' and 'my.db' both become 'my-db'"):
        table.name("my.db")


# --- service env (Kubernetes' algorithm) -------------------------------------------------------

def test_service_env_follows_the_kubelet() -> None:
    svc = {"metadata": {"name": "redis-master"},
           "spec": {"clusterIP": "10.0.0.11", "ports": [{"port": 6379, "protocol": "TCP"}]}}
    assert service_env([svc]) == {
        "REDIS_MASTER_SERVICE_HOST": "10.0.0.11", "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_MASTER_PORT": "tcp://10.0.0.11:6379",
        "REDIS_MASTER_PORT_6379_TCP": "tcp://10.0.0.11:6379",
        "REDIS_MASTER_PORT_6379_TCP_PROTO": "tcp", "REDIS_MASTER_PORT_6379_TCP_PORT": "6379",
        "REDIS_MASTER_PORT_6379_TCP_ADDR": "10.0.0.11"}


def test_service_env_named_ports_udp_ipv6_and_headless() -> None:
    svc = {"metadata": {"name": "dns"},
           "spec": {"clusterIP": "fd00::a", "ports": [
               {"name": "udp-53", "port": 53, "protocol": "UDP"},
               {"name": "tcp-53", "port": 53}]}}
    headless = {"metadata": {"name": "x"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    env = service_env([svc, headless])
    assert env["DNS_SERVICE_PORT"] == "53"
    assert env["DNS_SERVICE_PORT_UDP_53"] == "53" and env["DNS_SERVICE_PORT_TCP_53"] == "53"
    assert env["DNS_PORT"] == "udp://[fd00::a]:53"
    assert env["DNS_PORT_53_TCP"] == "tcp://[fd00::a]:53"
    assert env["DNS_PORT_53_UDP_ADDR"] == "fd00::a"
    assert not any(k.startswith("X_") for k in env)
    assert env_name("my-db") == "MY_DB"


# --- the seed's linked pair --------------------------------------------------------------------

def seed_pair() -> list[dict[str, Any]]:
    db = container("db", Image="training/postgres", User="postgres",
                   Env=["PATH=/usr/bin", "PG_VERSION=15", "PGDATA=/var/lib/postgresql/15/main"],
                   ExposedPorts={"5432/tcp": {}}, Cmd=["sh", "-c", "exec postgres"])
    web = container("web", Image="training/webapp", WorkingDir="/opt/webapp",
                    Cmd=["python", "app.py"], ExposedPorts={"5000/tcp": {}},
                    host={"Links": ["/db:/web/db"], "PublishAllPorts": True})
    return [web, db]


def test_link_becomes_a_service_named_after_the_alias_with_the_targets_ports() -> None:
    result = generate(seed_pair(), {})
    kinds = [d["kind"] for d in result.documents]
    assert kinds == ["Service", "Pod", "Pod"]  # Services first, link targets before parents
    (svc,) = docs(result, "Service")
    assert svc["metadata"]["name"] == "db"
    assert svc["spec"] == {"selector": {"app": "db"},
                           "ports": [{"port": 5432, "targetPort": 5432, "protocol": "TCP"}]}
    assert [d["metadata"]["name"] for d in docs(result, "Pod")] == ["db", "web"]


def test_parent_gets_the_variables_kubernetes_does_not_inject() -> None:
    web = docs(generate(seed_pair(), {}), "Pod")[1]["spec"]["containers"][0]
    assert web["env"] == [
        {"name": "PATH", "value": "/bin"},
        {"name": "DB_NAME", "value": "/web/db"},
        {"name": "DB_ENV_PG_VERSION", "value": "15"},
        {"name": "DB_ENV_PGDATA", "value": "/var/lib/postgresql/15/main"}]


def test_random_published_ports_need_service_flag_for_a_nodeport() -> None:
    plain = generate(seed_pair(), {})
    assert "web: ports published on a random host port have no Kubernetes equivalent " \
           "without --service (a NodePort Service)" in plain.warnings
    with_service = generate(seed_pair(), {}, services=True)
    nodeport = [d for d in docs(with_service, "Service") if d["metadata"]["name"] == "web-published"]
    assert nodeport[0]["spec"]["type"] == "NodePort"
    assert nodeport[0]["spec"]["selector"] == {"app": "web"}
    assert nodeport[0]["spec"]["ports"] == [{"port": 5000, "targetPort": 5000, "protocol": "TCP"}]


def test_non_numeric_user_is_reported() -> None:
    result = generate(seed_pair(), {})
    assert any(w.startswith("db: user 'postgres'") for w in result.warnings)


def test_target_outside_the_set_is_reported_and_still_gets_its_service() -> None:
    web, db = seed_pair()
    result = generate([web], {}, linked={"db": db})
    assert [d["kind"] for d in result.documents] == ["Service", "Pod"]
    assert any("db is not generated here" in w for w in result.warnings)


def test_aliases_naming_two_targets_are_refused() -> None:
    a = container("a", ExposedPorts={"80/tcp": {}})
    b = container("b", ExposedPorts={"80/tcp": {}})
    p = container("p", host={"Links": ["/a:/p/x"]})
    q = container("q", host={"Links": ["/b:/q/x"]})
    with pytest.raises(GenerateError, match="Service 'x' would select both 'a'"):
        generate([a, b, p, q], {})


def test_multi_port_services_are_in_docker_order_with_names() -> None:
    db = container("db", ExposedPorts={"9000/udp": {}, "80/udp": {}, "80/tcp": {}})
    web = container("web", host={"Links": ["/db:/web/my-db"]})
    (svc,) = docs(generate([web, db], {}), "Service")
    assert svc["metadata"]["name"] == "my-db"
    assert [(p["port"], p["protocol"], p["name"]) for p in svc["spec"]["ports"]] == [
        (80, "TCP", "tcp-80"), (80, "UDP", "udp-80"), (9000, "UDP", "udp-9000")]


def test_alias_that_changes_its_variable_names_is_reported() -> None:
    db = container("db", ExposedPorts={"80/tcp": {}})
    web = container("web", host={"Links": ["/db:/web/the.db"]})
    result = generate([web, db], {})
    assert "web: link alias 'the.db': its Service 'the-db' gives variables THE_DB_* where the " \
           "link gives THE.DB_*" in result.warnings


def test_target_without_ports_gets_no_service_and_a_warning() -> None:
    db = container("db")
    web = container("web", host={"Links": ["/db:/web/db"]})
    result = generate([web, db], {})
    assert docs(result, "Service") == []
    assert any("exposes no port" in w for w in result.warnings)


# --- every mapped option -----------------------------------------------------------------------

def everything() -> dict[str, Any]:
    return container(
        "All_In", Image="busybox:latest", Entrypoint=["/bin/sh"], Cmd=["-c", "sleep 1"],
        Env=["A=1", "BARE"], WorkingDir="/w", User="1000:100", Labels={"com.x/y": "z" * 80},
        Tty=True, OpenStdin=True, StopTimeout=7, Hostname="box",
        ExposedPorts={"80/tcp": {}, "53/udp": {}},
        Healthcheck={"Test": ["CMD-SHELL", "true"], "Interval": 1_500_000_000,
                     "Timeout": 2_000_000_000, "Retries": 4},
        host={"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
              "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
              "Memory": 64 * 1024 * 1024, "NanoCpus": 500_000_000, "CapAdd": ["CAP_NET_ADMIN"],
              "CapDrop": ["mknod"], "ReadonlyRootfs": True, "ExtraHosts": ["h1:10.1.1.1", "h2:10.1.1.1"],
              "Tmpfs": {"/run": "rw,size=64m"}, "Sysctls": {"net.ipv4.ip_forward": "1"}},
        mounts=[{"Type": "volume", "Name": "data_vol", "Destination": "/data", "RW": True},
                {"Type": "volume", "Name": "a" * 64, "Destination": "/anon", "RW": True},
                {"Type": "bind", "Source": "/srv/x", "Destination": "/x", "RW": False},
                {"Type": "tmpfs", "Destination": "/t", "RW": True}])


def test_every_mapped_option() -> None:
    result = generate([everything()], {})
    (claim,) = docs(result, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "data-vol"
    (pod,) = docs(result, "Pod")
    assert pod["metadata"] == {"name": "all-in", "labels": {"app": "all-in"},
                               "annotations": {"com.x/y": "z" * 80}}
    spec = pod["spec"]
    c = spec["containers"][0]
    assert c["image"] == "busybox:latest"
    assert c["command"] == ["/bin/sh"] and c["args"] == ["-c", "sleep 1"]
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["workingDir"] == "/w"
    assert c["ports"] == [{"containerPort": 53, "protocol": "UDP"},
                          {"containerPort": 80, "protocol": "TCP", "hostPort": 8080,
                           "hostIP": "127.0.0.1"}]
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": str(64 * 1024 * 1024)}}
    assert c["readinessProbe"] == {"exec": {"command": ["/bin/sh", "-c", "true"]},
                                   "periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 4}
    assert c["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100,
                                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                                    "readOnlyRootFilesystem": True}
    assert c["tty"] is True and c["stdin"] is True
    assert c["volumeMounts"] == [
        {"name": "data-vol", "mountPath": "/data"}, {"name": "anonymous-1", "mountPath": "/anon"},
        {"name": "host-2", "mountPath": "/x", "readOnly": True}, {"name": "tmpfs-3", "mountPath": "/t"},
        {"name": "tmpfs-opt-0", "mountPath": "/run"}]
    assert spec["volumes"] == [
        {"name": "data-vol", "persistentVolumeClaim": {"claimName": "data-vol"}},
        {"name": "anonymous-1", "emptyDir": {}},
        {"name": "host-2", "hostPath": {"path": "/srv/x"}},
        {"name": "tmpfs-3", "emptyDir": {"medium": "Memory"}},
        {"name": "tmpfs-opt-0", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["hostname"] == "box"
    assert spec["hostAliases"] == [{"ip": "10.1.1.1", "hostnames": ["h1", "h2"]}]
    assert spec["terminationGracePeriodSeconds"] == 7
    assert sorted(result.warnings) == sorted([
        "All_In: environment entry 'BARE' has no value and is left out",
        "All_In: restart policy on-failure:3: Kubernetes has no retry limit",
        "All_In: HostConfig.Sysctls is not carried to Kubernetes"])


def test_deployment_wraps_the_pod_spec() -> None:
    result = generate([everything()], {}, kind="deployment")
    (dep,) = docs(result, "Deployment")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "all-in"}}
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "all-in"}
    assert "restartPolicy" not in dep["spec"]["template"]["spec"]
    assert "All_In: restart policy 'on-failure': the pods of a Deployment are always restarted" \
        in result.warnings


def test_user_network_aliases_become_services_and_what_cannot_be_said_is_reported() -> None:
    c = container("proj_db_1", ExposedPorts={"5432/tcp": {}}, MacAddress="02:42:ac:11:00:09",
                  networks={"proj_default": {"Aliases": ["db", "xxx"]}, "other": {"Aliases": []}})
    c["NetworkSettings"]["Networks"]["proj_default"]["Aliases"][1] = c["Id"][:12]
    nets = {"proj_default": {"Internal": False, "Options": {}},
            "other": {"Internal": True,
                      "Options": {"com.docker.network.bridge.enable_icc": "false"}}}
    result = generate([c], nets)
    (svc,) = docs(result, "Service")
    assert svc["metadata"]["name"] == "db" and svc["spec"]["selector"] == {"app": "proj-db-1"}
    assert result.warnings == [
        "proj_db_1: second network 'other': a pod has one network, shared by all pods",
        "proj_db_1: network 'other' is internal: Kubernetes needs a NetworkPolicy for that",
        "proj_db_1: network 'other' has inter-container traffic off (--icc=false): Kubernetes "
        "needs a NetworkPolicy for that",
        "proj_db_1: MAC address 02:42:ac:11:00:09 cannot be set in Kubernetes"]


def test_input_is_not_modified() -> None:
    pair = seed_pair()
    before = copy.deepcopy(pair)
    generate(pair, {})
    assert pair == before


def test_hostpath_comment() -> None:
    text = "spec:\n  volumes:\n  - name: h\n    hostPath:\n      path: /x\n"
    assert with_comments(text).splitlines()[3].startswith("    # hostPath: a bind mount")


def test_host_modes() -> None:
    c = container("h", host={"NetworkMode": "host", "IpcMode": "host", "PidMode": "host"},
                  networks={"host": {}})
    result = generate([c], {})
    spec = docs(result, "Pod")[0]["spec"]
    assert (spec["hostNetwork"], spec["hostIPC"], spec["hostPID"]) == (True, True, True)
    assert result.warnings == []
    c = container("n", host={"IpcMode": "none"})
    assert generate([c], {}).warnings == ["n: HostConfig.IpcMode 'none' is not carried to Kubernetes"]


def test_defaults_docker_shows_are_no_warning() -> None:
    result = generate([container("d", host={"Runtime": "runc", "Isolation": ""})], {})
    assert result.warnings == []
    result = generate([container("d", host={"Runtime": "crun"})], {})
    assert result.warnings == ["d: HostConfig.Runtime is not carried to Kubernetes"]


def test_volume_labels_and_options() -> None:
    c = container("v", mounts=[{"Type": "volume", "Name": "fast", "Destination": "/f", "RW": True}])
    info = {"fast": {"Driver": "local", "Labels": {"tier": "cache"},
                     "Options": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}}
    result = generate([c], {}, volumes=info)
    (claim,) = docs(result, "PersistentVolumeClaim")
    assert claim["metadata"] == {"name": "fast", "annotations": {"tier": "cache"}}
    assert result.warnings == ["v: volume 'fast' (driver local, options device=tmpfs,o=size=1m,"
                               "type=tmpfs): the claim gets the cluster's default storage"]
    assert generate([c], {}, volumes={"fast": {"Driver": "local", "Options": None}}).warnings == []
