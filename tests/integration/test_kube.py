"""`tether kube generate|play|down` on a real tetherd: the seed's linked pair (busybox stand-ins
with the seed's shape: db exposing 5432 with PG_VERSION in its env, web publishing 5000 with
`--link db:db`), a container with every mapped option and the compose example, each generated,
validated against the Kubernetes schemas, and the pair played back under other names."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from test_compose import EXAMPLE, compose, ok
from test_lifecycle import out
from test_links_engine import pid1_env
from tether.rules.kube_env import service_env

pytestmark = pytest.mark.integration
VERSION = "1.35"
CLUSTER_IP = "10.96.0.10"


def validated(text: str) -> list[dict]:
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, VERSION, strict=True)
    return documents


def run_ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert b"Traceback" not in result.stderr
    return result.stdout.decode()


@pytest.fixture
def pair(daemon):
    d = daemon
    out(d.tether("run", "-d", "--name", "kdb", "-e", "PG_VERSION=15", "--expose", "5432",
                 "busybox", "nc", "-ll", "-p", "5432", "-e", "echo", "db-ok"))
    out(d.tether("run", "-d", "--name", "kweb", "-P", "--expose", "5000", "--link", "kdb:db",
                 "busybox", "sleep", "600"))
    try:
        yield d
    finally:
        d.tether("rm", "-f", "kweb", "kdb")


def test_env_parity_with_the_link(pair):
    """The variables a cluster would give the generated web pod (the kubelet's rule, with the
    explicit env entries) are the link's variables, name by name; values differ only in the
    address."""
    d = pair
    generated = pair.tether("kube", "generate", "kweb", "kdb")
    documents = validated(run_ok(generated))
    services = [{**s, "spec": {**s["spec"], "clusterIP": CLUSTER_IP}}
                for s in documents if s["kind"] == "Service"]
    (web,) = [p for p in documents if p["kind"] == "Pod" and p["metadata"]["name"] == "kweb"]
    cluster = {**service_env(services),
               **{e["name"]: e["value"] for e in web["spec"]["containers"][0]["env"]}}
    tether = pid1_env(d, "kweb")
    db_ip = out(d.tether("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "kdb"))

    def link_vars(env: dict[str, str], ip: str) -> dict[str, str]:
        return {k: v.replace(ip, "<address>") for k, v in env.items()
                if k.startswith("DB_") and "_SERVICE_" not in k}

    assert link_vars(cluster, CLUSTER_IP) == link_vars(tether, db_ip)
    assert sorted(link_vars(tether, db_ip)) == [
        "DB_ENV_PG_VERSION", "DB_NAME", "DB_PORT", "DB_PORT_5432_TCP", "DB_PORT_5432_TCP_ADDR",
        "DB_PORT_5432_TCP_PORT", "DB_PORT_5432_TCP_PROTO"]
    assert "kweb: ports published on a random host port" in generated.stderr.decode()


def test_play_back_under_other_names_and_down(pair, tmp_path: Path):
    d = pair
    text = run_ok(d.tether("kube", "generate", "--service", "kweb", "kdb"))
    validated(text)
    spec = tmp_path / "pair.yaml"
    spec.write_text(text)
    made = run_ok(d.tether("kube", "play", str(spec))).split()
    assert made == ["kdb-kdb", "kweb-kweb"]
    try:
        env = pid1_env(d, "kweb-kweb")
        played_db = out(d.tether("inspect", "-f",
                                 "{{(index .NetworkSettings.Networks \"tether-kube\").IPAddress}}",
                                 "kdb-kdb"))
        assert env["DB_PORT_5432_TCP_ADDR"] == played_db
        assert env["DB_PORT"] == f"tcp://{played_db}:5432"
        assert env["DB_NAME"] == "/kweb/db" and env["DB_ENV_PG_VERSION"] == "15"
        # web reaches db through the variable, and through the Service's name
        reply = out(d.tether("exec", "kweb-kweb", "sh", "-c",
                             "nc $DB_PORT_5432_TCP_ADDR $DB_PORT_5432_TCP_PORT </dev/null"))
        assert reply == "db-ok"
        assert out(d.tether("exec", "kweb-kweb", "sh", "-c", "nc db 5432 </dev/null")) == "db-ok"
        # the NodePort Service of web's published port publishes it again
        assert re.fullmatch(r"0\.0\.0\.0:[0-9]+", out(d.tether("port", "kweb-kweb", "5000")).splitlines()[0])
        again = d.tether("kube", "play", str(spec))
        assert again.returncode == 1
        assert "container 'kdb-kdb' exists already" in again.stderr.decode()
        assert run_ok(d.tether("kube", "play", "--replace", str(spec))).split() == [
            "kweb-kweb", "kdb-kdb", "kdb-kdb", "kweb-kweb"]
    finally:
        removed = d.tether("kube", "down", str(spec))
    assert run_ok(removed).split() == ["kweb-kweb", "kdb-kdb", "tether-kube"]
    names = out(d.tether("ps", "-a", "--format", "{{.Names}}")).split()
    assert "kdb-kdb" not in names and "kweb-kweb" not in names
    assert d.tether("network", "inspect", "tether-kube").returncode == 1


def test_unsupported_input_is_refused_naming_the_field(daemon, tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "lifecycle": {"preStop": {}}}]}}))
    result = daemon.tether("kube", "play", str(spec))
    assert result.returncode == 1
    assert result.stderr.decode() == ("kube play: Pod p: unsupported field "
                                      "spec.containers[0].lifecycle\n")
    spec.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "image": "nosuchimage:1"}]}}]))
    result = daemon.tether("kube", "play", str(spec))
    assert (result.returncode, result.stderr.decode()) == (
        1, "kube play: no image 'nosuchimage:1' here: pull or build it first\n")
    assert daemon.tether("inspect", "good-c").returncode == 1  # nothing was made
    spec.write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n")
    result = daemon.tether("kube", "play", str(spec))
    assert "unsupported kind 'Job' (apiVersion 'batch/v1')" in result.stderr.decode()


def test_a_container_with_every_mapped_option(daemon, tmp_path: Path):
    d = daemon
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    out(d.docker("run", "-d", "--name", "kall", "-e", "A=1", "-w", "/w", "-u", "1000:100",
                 "--label", "tier=test", "--restart", "on-failure:2", "-p", "127.0.0.1::80",
                 "--expose", "53/udp", "-v", "kvol:/data", "-v", f"{host_dir}:/x:ro",
                 "--tmpfs", "/run:size=16m", "--cap-add", "NET_ADMIN", "--read-only",
                 "--add-host", "h1:10.1.1.1", "--health-cmd", "true", "--health-interval", "2s",
                 "--hostname", "box", "-t",
                 "busybox", "sleep", "600"))
    try:
        generated = d.tether("kube", "generate", "--type", "deployment", "--service", "kall")
        documents = validated(run_ok(generated))
        assert [doc["kind"] for doc in documents] == [
            "PersistentVolumeClaim", "Service", "Deployment"]
        text = generated.stdout.decode()
        assert "# hostPath: a bind mount of the tether host" in text
        warnings = generated.stderr.decode()
        assert "kall: restart policy 'on-failure': the pods of a Deployment are always " \
               "restarted" in warnings
        assert "kall: restart policy on-failure:2: Kubernetes has no retry limit" in warnings
    finally:
        d.tether("rm", "-f", "-v", "kall")
        d.tether("volume", "rm", "kvol")


def test_the_compose_example(daemon):
    d = daemon
    outside = out(d.tether("run", "-d", "--name", "outside", "busybox", "nc", "-ll", "-p", "7000",
                           "-e", "echo", "outside-ok"))
    try:
        ok(compose(d.host, "kubeproj", "up", "-d", web_port=18080))
        generated = d.tether("kube", "generate", "--project", "kubeproj")
        documents = validated(run_ok(generated))
        services = {s["metadata"]["name"]: s["spec"]["selector"]["app"]
                    for s in documents if s["kind"] == "Service"}
        assert services == {"db": "kubeproj-db-1", "cache": "kubeproj-cache-1",
                            "web": "kubeproj-web-1"}
        warnings = generated.stderr.decode()
        # monitor's external link: outside exposes nothing, so no Service can carry `upstream`
        assert "kubeproj_monitor_1: link outside:upstream of kubeproj_monitor_1: outside is not " \
               "generated here" in warnings
        assert "outside exposes no port, and a Service needs one: the name 'upstream' will " \
               "not resolve" in warnings
    finally:
        compose(d.host, "kubeproj", "down", web_port=18080)
        d.tether("rm", "-f", outside)
    assert EXAMPLE.is_dir()


def test_configmaps_secrets_claims_and_deployments(daemon, tmp_path: Path):
    d = daemon
    spec = tmp_path / "app.yaml"
    spec.write_text("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {MODE: fast, app.conf: "level=3\\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {PASSWORD: aHVudGVyMg==}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kdata}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kapp}
spec:
  replicas: 2
  selector: {matchLabels: {app: kapp}}
  template:
    metadata: {labels: {app: kapp}}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sleep, "600"]
        envFrom: [{configMapRef: {name: settings}, prefix: CFG_}]
        env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: PASSWORD}}}]
        volumeMounts:
        - {name: conf, mountPath: /etc/app}
        - {name: secret, mountPath: /run/secret}
        - {name: data, mountPath: /data}
      volumes:
      - {name: conf, configMap: {name: settings, items: [{key: app.conf, path: app.conf}]}}
      - {name: secret, secret: {secretName: creds}}
      - {name: data, persistentVolumeClaim: {claimName: kdata}}
""")
    played = d.tether("kube", "play", str(spec))
    assert run_ok(played).split() == ["kapp-1-main", "kapp-2-main"]
    assert "PersistentVolumeClaim kdata: a local volume" in played.stderr.decode()
    try:
        env = pid1_env(d, "kapp-2-main")
        assert env["CFG_MODE"] == "fast" and env["PASSWORD"] == "hunter2"
        assert out(d.tether("exec", "kapp-1-main", "cat", "/etc/app/app.conf")) == "level=3"
        assert out(d.tether("exec", "kapp-1-main", "cat", "/run/secret/PASSWORD")) == "hunter2"
        assert d.tether("exec", "kapp-1-main", "sh", "-c", "echo x > /etc/app/y").returncode != 0
        out(d.tether("exec", "kapp-1-main", "sh", "-c", "echo kept > /data/f"))
        assert out(d.tether("exec", "kapp-2-main", "cat", "/data/f")) == "kept"
        run_ok(d.tether("kube", "play", "--replace", str(spec)))
        assert out(d.tether("exec", "kapp-1-main", "cat", "/data/f")) == "kept"
        listed = out(d.tether("pod", "ls", "--format", "{{.Name}} {{.Status}} {{.Containers}}"))
        assert {"kapp-1 Running 1", "kapp-2 Running 1"} <= set(listed.splitlines())
        (shown,) = json.loads(out(d.tether("pod", "inspect", "kapp-1")))
        assert shown["Labels"] == {"app": "kapp"}
        assert [c["Name"] for c in shown["Containers"]] == ["kapp-1-main"]
        refused = d.tether("pod", "rm", "kapp-2")
        assert refused.returncode == 1 and b"You cannot remove a running container" in refused.stderr
        assert out(d.tether("pod", "rm", "-f", "kapp-2")) == "kapp-2"
        assert "kapp-2 " not in out(d.tether("pod", "ls"))
        missing = d.tether("pod", "inspect", "nopod")
        assert (missing.returncode, missing.stderr) == (1, b"Error: No such pod: nopod\n")
    finally:
        removed = run_ok(d.tether("kube", "down", str(spec))).split()
    assert removed == ["kapp-1-main", "kdata", "kapp-1-conf", "kapp-1-secret",
                       "kapp-2-conf", "kapp-2-secret", "tether-kube"]
    volumes = out(d.tether("volume", "ls", "-q")).split()
    assert not [v for v in volumes if v.startswith("kapp") or v == "kdata"]


def test_a_pod_of_two_containers_shares_localhost(daemon, tmp_path: Path):
    """The second container joins the first one's network and IPC namespaces: it reaches the
    first on 127.0.0.1, and `pod rm` removes both."""
    d = daemon
    spec = tmp_path / "duo.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kduo"},
        "spec": {"containers": [
            {"name": "server", "image": "busybox",
             "command": ["nc", "-ll", "-p", "8080", "-e", "echo", "pod-ok"]},
            {"name": "client", "image": "busybox", "command": ["sleep", "600"]}]}}))
    try:
        assert run_ok(d.tether("kube", "play", str(spec))).split() == [
            "kduo-server", "kduo-client"]
        # the listener may not be bound yet when play returns: ask until it answers
        replies = [out(d.tether("exec", "kduo-client", "sh", "-c",
                                "nc 127.0.0.1 8080 </dev/null; sleep 0.2")) for _ in range(10)]
        assert "pod-ok" in replies
        ns = [out(d.tether("exec", name, "readlink", f"/proc/self/ns/{kind}"))
              for kind in ("net", "ipc") for name in ("kduo-server", "kduo-client")]
        assert ns[0] == ns[1] and ns[2] == ns[3]
        # the played pod generates as it was written: by its name, with its containers' names
        regenerated = d.tether("kube", "generate", "kduo")
        (again,) = validated(run_ok(regenerated))
        assert regenerated.stderr == b""
        assert again["metadata"]["name"] == "kduo"
        assert [(c["name"], c["command"]) for c in again["spec"]["containers"]] == [
            ("server", ["nc", "-ll", "-p", "8080", "-e", "echo", "pod-ok"]),
            ("client", ["sleep", "600"])]
        missing = d.tether("kube", "generate", "nopod")
        assert (missing.returncode, missing.stderr) == (
            1, b"Error response from daemon: No such container: nopod\n")
        assert out(d.tether("pod", "rm", "-f", "kduo")) == "kduo"
        names = out(d.tether("ps", "-a", "--format", "{{.Names}}")).split()
        assert "kduo-server" not in names and "kduo-client" not in names
    finally:
        d.tether("kube", "down", str(spec))


def test_containers_sharing_namespaces_round_trip_as_one_pod(daemon, tmp_path: Path):
    """A container and a member in its network, IPC and PID namespaces (`container:` modes)
    generate ONE pod of two containers with shareProcessNamespace, which validates, plays back
    as two containers sharing those namespaces again, and goes with `kube down`; a member named
    without its owner, or sharing IPC without the network, is refused."""
    d = daemon
    out(d.tether("run", "-d", "--name", "kown", "--ipc", "shareable", "--expose", "8080",
                 "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "own-ok"))
    out(d.tether("run", "-d", "--name", "kside", "--network", "container:kown", "--ipc",
                 "container:kown", "--pid", "container:kown", "busybox", "sleep", "600"))
    out(d.tether("create", "--name", "kipc", "--ipc", "container:kown", "busybox", "true"))
    spec = tmp_path / "pod.yaml"
    try:
        generated = d.tether("kube", "generate", "kside", "kown")
        text = run_ok(generated)
        assert generated.stderr == b""
        (pod,) = validated(text)
        assert (pod["kind"], pod["metadata"]["name"]) == ("Pod", "kown")
        assert [c["name"] for c in pod["spec"]["containers"]] == ["kown", "kside"]
        assert pod["spec"]["shareProcessNamespace"] is True
        assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 8080,
                                                          "protocol": "TCP"}]
        validated(run_ok(d.tether("kube", "generate", "--type", "deployment", "kown", "kside")))
        alone = d.tether("kube", "generate", "kside")
        assert (alone.returncode, alone.stderr.decode()) == (
            1, "kube generate: kside joins the network namespace of kown (--network "
               "container:kown): name kown too, the two become one pod\n")
        split = d.tether("kube", "generate", "kown", "kipc")
        assert (split.returncode, split.stderr.decode()) == (
            1, "kube generate: kipc shares the IPC namespace of kown (--ipc container:kown) but "
               "not its network namespace: the containers of a Kubernetes pod share both, and "
               "two pods would share neither; run it with --network container:kown too\n")

        spec.write_text(text)
        played = d.tether("kube", "play", str(spec))
        assert run_ok(played).split() == ["kown-kown", "kown-kside"]
        assert "shareProcessNamespace: the pod's containers share the PID namespace of " \
               "kown-kown" in played.stderr.decode()
        ns = {name: [out(d.tether("exec", name, "readlink", f"/proc/self/ns/{kind}"))
                     for kind in ("net", "ipc", "pid")]
              for name in ("kown", "kown-kown", "kown-kside")}
        assert ns["kown-kown"] == ns["kown-kside"]
        assert not set(ns["kown"]) & set(ns["kown-kown"])  # the played pod's own namespaces
        # localhost and processes are shared: the member reaches the owner's listener on
        # 127.0.0.1 and sees its process
        replies = [out(d.tether("exec", "kown-kside", "sh", "-c",
                                "nc 127.0.0.1 8080 </dev/null; sleep 0.2")) for _ in range(10)]
        assert "own-ok" in replies
        assert "nc -ll -p 8080" in out(d.tether("exec", "kown-kside", "ps", "-o", "args"))
    finally:
        removed = d.tether("kube", "down", str(spec)) if spec.exists() else None
        d.tether("rm", "-f", "kipc", "kside", "kown")
    assert run_ok(removed).split() == ["kown-kside", "kown-kown", "tether-kube"]
    names = out(d.tether("ps", "-a", "--format", "{{.Names}}")).split()
    assert not {"kown-kown", "kown-kside"} & set(names)
    assert d.tether("network", "inspect", "tether-kube").returncode == 1
