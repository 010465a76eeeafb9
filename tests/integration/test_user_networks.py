"""User-defined networks on a real tetherd: create/ls/inspect/rm/prune through the tether CLI and
the API, containers on several networks (interfaces come and go, /etc/hosts follows), isolation
between bridges, `--internal`, published ports on a user network, records kept across a daemon
restart. The module has a daemon of its own: its network list is part of what is checked."""
from __future__ import annotations

import json
import subprocess
import uuid
from typing import Iterator

import pytest

from conftest import running_daemon
from harness import Daemon
from test_lifecycle import out

pytestmark = pytest.mark.integration

SERVER = "while true; do echo hi-from-$(hostname) | nc -l -p 80; done"


@pytest.fixture(scope="module")
def d() -> Iterator[Daemon]:
    with running_daemon() as daemon:
        yield daemon


@pytest.fixture
def clean(d: Daemon) -> Iterator[Daemon]:
    """Every test leaves no container and no user network behind, also on failure."""
    try:
        yield d
    finally:
        d.remove_all()
        for item in d.api("GET", "/networks")[1]:
            if item["Name"] not in ("bridge", "host", "none"):
                d.api("DELETE", f"/networks/{item['Id']}")


def ns_exec(d: Daemon, *argv: str) -> subprocess.CompletedProcess:
    """A command in the daemon's network namespace (where its bridges live)."""
    return subprocess.run(["ip", "netns", "exec", d.netns, *argv], capture_output=True,
                          timeout=30)


def ping(d: Daemon, container: str, address: str) -> bool:
    return d.docker("exec", container, "ping", "-c1", "-W1", address).returncode == 0


def address(d: Daemon, container: str, network: str) -> str:
    return out(d.docker("inspect", "-f",
                        f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}",
                        container))


def test_create_inspect_ls_rm(clean: Daemon):
    d = clean
    nid = out(d.tether("network", "create", "--label", "k=v", "-o",
                       "com.docker.network.bridge.enable_icc=true", "tn1"))
    assert len(nid) == 64
    view = json.loads(out(d.tether("network", "inspect", "tn1")))[0]
    assert view["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]
    assert (view["Labels"], view["Driver"], view["Internal"]) == ({"k": "v"}, "bridge", False)
    # the bridge device is br-<12 hex>, with the gateway address
    link = out(ns_exec(d, "ip", "-4", "-o", "addr", "show", f"br-{nid[:12]}"))
    assert "172.18.0.1/16" in link
    # the next network takes the next default pool; a given subnet must not overlap
    out(d.tether("network", "create", "tn2"))
    assert json.loads(out(d.tether("network", "inspect", "tn2")))[0]["IPAM"]["Config"][0][
        "Subnet"] == "172.19.0.0/16"
    r = d.tether("network", "create", "--subnet", "172.18.3.0/24", "tn3")
    assert r.returncode == 1
    assert r.stderr.decode().strip() == ("Error response from daemon: Pool overlaps with other "
                                         "one on this address space")
    r = d.tether("network", "create", "tn1")
    assert r.stderr.decode().strip() == ("Error response from daemon: network with name tn1 "
                                         "already exists")
    r = d.tether("network", "create", "--gateway", "10.1.1.1", "tn4")
    assert r.stderr.decode().strip() == "every ip-range or gateway must have a corresponding subnet"
    names = out(d.tether("network", "ls", "--format", "{{.Name}} {{.Driver}}")).splitlines()
    assert names == ["bridge bridge", "host host", "none null", "tn1 bridge", "tn2 bridge"]
    assert out(d.tether("network", "ls", "-q", "-f", "label=k=v")) == nid[:12]
    assert out(d.tether("network", "rm", "tn1", "tn2")) == "tn1\ntn2"
    assert ns_exec(d, "ip", "link", "show", f"br-{nid[:12]}").returncode != 0
    r = d.tether("network", "rm", "bridge")
    assert b"bridge is a pre-defined network and cannot be removed" in r.stderr


def test_subnet_gateway_range_and_static_ip(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254",
                 "--ip-range", "10.77.0.128/25", "tr1"))
    r = d.docker("run", "--rm", "--network", "tr1", "busybox", "ip", "-4", "-o", "addr", "show",
                 "eth0")
    assert "inet 10.77.0.128/24" in out(r)
    r = d.docker("run", "--rm", "--network", "tr1", "--ip", "10.77.0.5", "busybox", "ip", "route")
    assert out(r).splitlines()[0].split()[:3] == ["default", "via", "10.77.0.254"]
    r = d.docker("run", "--rm", "--ip", "10.77.0.6", "busybox", "true")
    assert b"user specified IP address is supported on user defined networks only" in r.stderr


def test_connect_disconnect_running_container(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "tc1"))
    out(d.docker("run", "-d", "--name", "tc-a", "--network", "tc1", "--network-alias", "web",
                 "busybox", "sleep", "300"))
    out(d.docker("run", "-d", "--name", "tc-b", "busybox", "sleep", "300"))
    out(d.docker("network", "connect", "--alias", "x", "tc1", "tc-b"))
    r = d.docker("network", "connect", "tc1", "tc-b")
    assert r.stderr.decode().strip() == ("Error response from daemon: endpoint with name tc-b "
                                         "already exists in network tc1")
    b_addr = address(d, "tc-b", "tc1")
    assert f"inet {b_addr}/16" in out(d.docker("exec", "tc-b", "ip", "-4", "addr", "show", "eth1"))
    hosts = out(d.docker("exec", "tc-b", "cat", "/etc/hosts")).splitlines()
    short = out(d.docker("inspect", "-f", "{{.Config.Hostname}}", "tc-b"))
    assert hosts[-2:] == [f"{address(d, 'tc-b', 'bridge')}\t{short}", f"{b_addr}\t{short}"]
    assert out(d.docker("exec", "tc-b", "cat", "/etc/resolv.conf")) == \
        "nameserver 127.0.0.11\noptions ndots:0"
    aliases = json.loads(out(d.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                      "tc-b")))["tc1"]["Aliases"]
    assert aliases == ["x", short]
    assert ping(d, "tc-b", address(d, "tc-a", "tc1"))
    members = json.loads(out(d.docker("network", "inspect", "-f", "{{json .Containers}}", "tc1")))
    assert sorted(m["Name"] for m in members.values()) == ["tc-a", "tc-b"]
    r = d.docker("network", "rm", "tc1")
    assert b"has active endpoints" in r.stderr
    out(d.docker("network", "disconnect", "tc1", "tc-b"))
    assert d.docker("exec", "tc-b", "ip", "link", "show", "eth1").returncode != 0
    # as Docker 20.10: every line of the container's own name goes with the disconnect
    assert short not in out(d.docker("exec", "tc-b", "cat", "/etc/hosts"))
    r = d.docker("network", "disconnect", "tc1", "tc-b")
    assert b"is not connected to network tc1" in r.stderr
    r = d.docker("network", "connect", "host", "tc-b")
    assert r.stderr.decode().strip() == ("Error response from daemon: container cannot be "
                                         "disconnected from host network or connected to host "
                                         "network")
    # off the default bridge: eth0 goes, the container keeps running
    out(d.docker("network", "disconnect", "bridge", "tc-b"))
    assert d.docker("exec", "tc-b", "ip", "link", "show", "eth0").returncode != 0
    out(d.docker("network", "connect", "bridge", "tc-b"))
    assert address(d, "tc-b", "bridge").startswith("172.17.")
    # a container of a user network joins the default bridge too, also at its next start
    out(d.docker("network", "connect", "bridge", "tc-a"))
    assert "inet 172.17." in out(d.docker("exec", "tc-a", "ip", "-4", "addr", "show", "eth1"))
    # at a start the default bridge comes first, as eth0 (dockerd connects it first)
    out(d.docker("restart", "-t", "0", "tc-a"))
    assert "inet 172.17." in out(d.docker("exec", "tc-a", "ip", "-4", "addr", "show", "eth0"))
    assert sorted(out(d.docker("ps", "-f", "network=bridge", "--format", "{{.Names}}")).split()
                  ) == ["tc-a", "tc-b"]
    # `bridge` sorts before `tc1`: the default route goes by the bridge (libnetwork's order)
    assert "default via 172.17.0.1 dev eth0" in out(d.docker("exec", "tc-a", "ip", "route"))
    out(d.docker("network", "disconnect", "bridge", "tc-a"))
    # a stopped container's endpoint is released and its address comes back at the next start
    out(d.docker("stop", "-t", "0", "tc-a"))
    assert json.loads(out(d.docker("network", "inspect", "-f", "{{json .Containers}}",
                                   "tc1"))) == {}
    out(d.docker("start", "tc-a"))
    assert address(d, "tc-a", "tc1").startswith("172.")


def test_isolation_between_networks_and_the_default_bridge(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "ti1"))
    out(d.docker("network", "create", "ti2"))
    for name, net in (("ti-a", "ti1"), ("ti-a2", "ti1"), ("ti-b", "ti2"), ("ti-c", "bridge")):
        out(d.docker("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "300"))
    a, a2 = address(d, "ti-a", "ti1"), address(d, "ti-a2", "ti1")
    b, c = address(d, "ti-b", "ti2"), address(d, "ti-c", "bridge")
    assert ping(d, "ti-a", a2)
    assert not ping(d, "ti-a", b) and not ping(d, "ti-b", a)
    assert not ping(d, "ti-a", c) and not ping(d, "ti-c", a)
    # a container on both networks reaches both
    out(d.docker("network", "connect", "ti2", "ti-a2"))
    assert ping(d, "ti-a2", b) and ping(d, "ti-a2", a)


@pytest.fixture
def outside(clean: Daemon) -> Iterator[str]:
    """A namespace beyond the daemon's, at 198.51.100.2 through a veth: "the outside world"."""
    name = f"i7a-out-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        host_end = f"o{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "link", "add", host_end, "netns", clean.netns, "type", "veth",
                        "peer", "name", "eth0", "netns", name], check=True)
        for ns, dev, addr in ((clean.netns, host_end, "198.51.100.1/30"),
                              (name, "eth0", "198.51.100.2/30")):
            subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield "198.51.100.2"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_internal_network_has_no_way_out(clean: Daemon, outside: str):
    d = clean
    out(d.docker("network", "create", "to1"))
    out(d.docker("network", "create", "--internal", "to2"))
    assert json.loads(out(d.docker("network", "inspect", "to2")))[0]["Internal"] is True
    out(d.docker("run", "-d", "--name", "to-a", "--network", "to1", "busybox", "sleep", "300"))
    out(d.docker("run", "-d", "--name", "to-b", "--network", "to2", "busybox", "sleep", "300"))
    out(d.docker("run", "-d", "--name", "to-b2", "--network", "to2", "busybox", "sleep", "300"))
    assert ping(d, "to-a", outside)
    assert not ping(d, "to-b", outside)
    assert ping(d, "to-b", address(d, "to-b2", "to2"))


def test_published_port_on_a_user_network(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "tp1"))
    out(d.docker("run", "-d", "--name", "tp-web", "--network", "tp1", "-p", "127.0.0.1::80",
                 "busybox", "sh", "-c", SERVER))
    port = out(d.docker("port", "tp-web", "80")).rsplit(":", 1)[1]
    short = out(d.docker("inspect", "-f", "{{.Config.Hostname}}", "tp-web"))
    r = ns_exec(d, "busybox", "sh", "-c",
                f"for i in 1 2 3 4 5; do nc 127.0.0.1 {port} </dev/null && break; sleep 0.2; done")
    assert r.stdout.decode().strip() == f"hi-from-{short}"
    ports = json.loads(out(d.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}",
                                    "tp-web")))
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}
    # the port is free again once the container is gone
    out(d.docker("rm", "-f", "tp-web"))
    out(d.docker("run", "-d", "--name", "tp-web2", "--network", "tp1", "-p",
                 f"127.0.0.1:{port}:80", "busybox", "sleep", "300"))


def test_sdk_networks_and_networking_config(clean: Daemon):
    d = clean
    client = d.sdk()
    try:
        import docker.types
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet="10.66.0.0/24", gateway="10.66.0.1")])
        net = client.networks.create("ts1", driver="bridge", ipam=ipam, labels={"p": "q"})
        assert client.networks.get("ts1").attrs["IPAM"]["Config"] == [
            {"Subnet": "10.66.0.0/24", "Gateway": "10.66.0.1"}]
        assert [n.name for n in client.networks.list(names=["ts1"])] == ["ts1"]
        api = client.api
        config = api.create_networking_config({"ts1": api.create_endpoint_config(
            aliases=["db"], ipv4_address="10.66.0.50")})
        cid = api.create_container("busybox", "sleep 300", name="ts-c",
                                   host_config=api.create_host_config(network_mode="ts1"),
                                   networking_config=config)["Id"]
        api.start(cid)
        settings = api.inspect_container(cid)["NetworkSettings"]["Networks"]["ts1"]
        assert settings["IPAddress"] == "10.66.0.50"
        assert settings["Aliases"] == ["db", cid[:12]]
        assert settings["IPAMConfig"] == {"IPv4Address": "10.66.0.50"}
        other = client.containers.run("busybox", "sleep 300", name="ts-d", detach=True)
        net.connect(other, aliases=["cache"], ipv4_address="10.66.0.60")
        other.reload()
        assert other.attrs["NetworkSettings"]["Networks"]["ts1"]["IPAddress"] == "10.66.0.60"
        net.disconnect(other)
        other.reload()
        assert "ts1" not in other.attrs["NetworkSettings"]["Networks"]
        client.containers.get("ts-c").remove(force=True)
        assert client.networks.prune()["NetworksDeleted"] == ["ts1"]
    finally:
        client.close()


def test_networks_survive_a_daemon_restart(fresh_daemon: Daemon):
    d = fresh_daemon
    nid = out(d.docker("network", "create", "--subnet", "10.88.0.0/24", "tk1"))
    out(d.docker("run", "-d", "--name", "tk-a", "--network", "tk1", "busybox", "sleep", "300"))
    d.stop()
    d.start()
    assert json.loads(out(d.docker("network", "inspect", "tk1")))[0]["Id"] == nid
    out(d.docker("run", "-d", "--name", "tk-b", "--network", "tk1", "busybox", "sleep", "300"))
    # the running container kept its address: the new one gets the next
    assert address(d, "tk-a", "tk1") == "10.88.0.2"
    assert address(d, "tk-b", "tk1") == "10.88.0.3"
    assert ping(d, "tk-b", "10.88.0.2")


def test_container_list_filters_by_network_and_by_every_label(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "tf1"))
    out(d.docker("run", "-d", "--name", "tf-a", "--network", "tf1", "-l", "p=x", "-l", "s=web",
                 "busybox", "sleep", "300"))
    out(d.docker("run", "-d", "--name", "tf-b", "-l", "p=x", "-l", "s=db", "busybox", "sleep",
                 "300"))
    names = lambda *f: out(d.docker("ps", "--format", "{{.Names}}", *f)).split()  # noqa: E731
    assert names("-f", "network=tf1") == ["tf-a"]
    assert names("-f", "network=bridge") == ["tf-b"]
    assert names("-f", "label=p=x", "-f", "label=s=db") == ["tf-b"]
    assert sorted(names("-f", "label=p=x")) == ["tf-a", "tf-b"]


def test_bridge_name_and_mtu_options(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "-o", "com.docker.network.bridge.name=tmtu0", "-o",
                 "com.docker.network.driver.mtu=1400", "tm1"))
    assert "mtu 1400" in out(ns_exec(d, "ip", "link", "show", "tmtu0"))
    r = d.docker("run", "--rm", "--network", "tm1", "busybox", "cat", "/sys/class/net/eth0/mtu")
    assert out(r) == "1400"
    r = d.docker("network", "create", "-o", "com.docker.network.bridge.name=tmtu0", "tm2")
    assert r.returncode == 1 and b"tmtu0" in r.stderr
    out(d.docker("network", "rm", "tm1"))
    assert ns_exec(d, "ip", "link", "show", "tmtu0").returncode != 0


def test_tether_cli_prints_what_the_docker_cli_prints(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "--subnet", "10.55.0.0/24", "--label", "z=1", "tv1"))
    out(d.docker("network", "create", "--internal", "tv2"))
    out(d.docker("run", "-d", "--name", "tv-a", "--network", "tv1", "busybox", "sleep", "300"))
    for args in (("network", "ls"), ("network", "ls", "--no-trunc"), ("network", "ls", "-q"),
                 ("network", "ls", "-f", "label=z=1"), ("network", "ls", "-f", "type=custom"),
                 ("network", "ls", "--format", "{{.Name}}: {{.Internal}} {{.Labels}}"),
                 ("network", "inspect", "tv1", "tv2", "bridge"),
                 ("network", "inspect", "-f", "{{json .IPAM.Config}}", "tv1"),
                 ("network", "inspect", "nope"),
                 ("network", "create", "tv1"),
                 ("network", "connect", "tv1", "tv-a"),
                 ("network", "disconnect", "tv2", "tv-a")):
        ours, theirs = d.tether(*args), d.docker(*args)
        assert (ours.returncode, ours.stdout, ours.stderr) == \
            (theirs.returncode, theirs.stdout, theirs.stderr), args
    out(d.docker("rm", "-f", "tv-a"))
    assert out(d.tether("network", "prune", "-f")) == "Deleted Networks:\ntv1\ntv2"


def test_connect_with_a_link_and_forced_disconnect(clean: Daemon):
    d = clean
    out(d.docker("network", "create", "tl1"))
    out(d.docker("run", "-d", "--name", "tl-a", "--network", "tl1", "busybox", "sleep", "300"))
    out(d.docker("run", "-d", "--name", "tl-b", "busybox", "sleep", "300"))
    out(d.docker("network", "connect", "--link", "tl-a:buddy", "tl1", "tl-b"))
    links = out(d.docker("inspect", "-f", "{{json .NetworkSettings.Networks.tl1.Links}}", "tl-b"))
    assert json.loads(links) == ["tl-a:buddy"]
    # the link is a name for the embedded resolver only: no env var, no hosts line
    assert ping(d, "tl-b", "buddy")
    assert "buddy" not in out(d.docker("exec", "tl-b", "sh", "-c", "env; cat /etc/hosts"))
    assert not ping(d, "tl-a", "buddy")  # known to the container that declared it only
    r = d.docker("network", "disconnect", "tl1", "gone")
    assert b"No such container: gone" in r.stderr
    out(d.docker("network", "disconnect", "-f", "tl1", "gone"))
