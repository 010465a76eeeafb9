"""`tether network`: create, ls, inspect, rm, prune, connect, disconnect, as the docker CLI words
them (its client-side checks included: a gateway or range needs a subnet)."""
from __future__ import annotations

import ipaddress
import sys
from typing import Any

import click

from tether.cli import formatting
from tether.cli.client import CliError
from tether.cli.runopts import ipam_request
from tether.cli.common import (MULTI, TEMPLATE_HELP, DockerGroup, current_app, filters_query, for_each, out,
                               render_format)

_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
            "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def _kv(values: tuple[str, ...]) -> dict[str, str]:
    return {key: value for key, _, value in (v.partition("=") for v in values)}


def ipam_config(subnets: tuple[str, ...], gateways: tuple[str, ...],
                ranges: tuple[str, ...]) -> list[dict[str, str]]:
    """IPAM.Config from --subnet/--gateway/--ip-range: each gateway and range goes with the
    subnet that holds it (the docker CLI's consolidateIpam, its errors)."""
    if (gateways or ranges) and not subnets:
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    configs: list[dict[str, str]] = [{"Subnet": s} for s in subnets]
    nets = []
    for subnet in subnets:
        try:
            nets.append(ipaddress.ip_network(subnet, strict=False))
        except ValueError:
            raise CliError(f"invalid CIDR address: {subnet}") from None
    for key, values in (("IPRange", ranges), ("Gateway", gateways)):
        for value in values:
            try:
                target = ipaddress.ip_network(value, strict=False) if key == "IPRange" \
                    else ipaddress.ip_address(value)
            except ValueError:
                raise CliError(f"invalid {'CIDR' if key == 'IPRange' else 'IP'} address: "
                               f"{value}") from None
            holder = next((i for i, net in enumerate(nets)
                           if (target.subnet_of(net) if key == "IPRange" else target in net)),
                          None)
            if holder is None:
                raise CliError(f"no matching subnet for {'range' if key == 'IPRange' else 'gateway'}"
                               f" {value}")
            if key in configs[holder]:
                raise CliError(f"cannot configure multiple {'ranges' if key == 'IPRange' else 'gateways'}"
                               f" ({value}, {configs[holder][key]}) on the same subnet "
                               f"({subnets[holder]})")
            configs[holder][key] = value
    return configs


def network_contexts(items: list[dict[str, Any]], trunc: bool) -> list[dict[str, Any]]:
    """What `network ls --format` templates see (the docker CLI's networkContext), by name."""
    rows = []
    for item in sorted(items, key=lambda n: n["Name"]):
        labels = item.get("Labels") or {}
        rows.append({"ID": formatting.short_id(item["Id"]) if trunc else item["Id"],
                     "Name": item["Name"], "Driver": item["Driver"], "Scope": item["Scope"],
                     "IPv6": str(bool(item.get("EnableIPv6"))).lower(),
                     "Internal": str(bool(item.get("Internal"))).lower(),
                     "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                     "CreatedAt": item.get("Created", "")})
    return rows


@click.group("network", cls=DockerGroup)
def network() -> None:
    """Create, list, connect and remove networks."""


@network.command("create", usage="[OPTIONS] NETWORK", min_args=1)
@click.option("-d", "--driver", default="bridge", help="Network driver: tether has 'bridge' only")
@click.option("--subnet", multiple=True,
              help="Subnet in CIDR form, e.g. 10.5.0.0/24 (an IPv6 one with --ipv6)")
@click.option("--ipv6", is_flag=True, help="IPv6 addresses for containers (needs an IPv6 --subnet)")
@click.option("--gateway", multiple=True, help="Gateway address in the subnet (default: its first)")
@click.option("--ip-range", multiple=True, help="CIDR inside the subnet to give containers addresses from")
@click.option("--internal", is_flag=True, help="No traffic in or out: containers reach only each other")
@click.option("--attachable", is_flag=True, help="Set the Attachable flag (a swarm notion; recorded only)")
@click.option("--label", multiple=True, help="KEY=VALUE label for the network")
@click.option("-o", "--opt", multiple=True,
              help="KEY=VALUE driver option, e.g. com.docker.network.bridge.name=br0")
@click.argument("name", required=False)
def create(driver: str, subnet: tuple[str, ...], ipv6: bool, gateway: tuple[str, ...],
           ip_range: tuple[str, ...], internal: bool, attachable: bool, label: tuple[str, ...],
           opt: tuple[str, ...], name: str) -> None:
    """Create a bridge network with a subnet of its own.

    Each network is a Linux bridge; nftables rules keep bridges from forwarding to one another,
    and its containers find each other by name through the embedded DNS server.
    """
    configs = ipam_config(subnet, gateway, ip_range)
    body = {"Name": name, "CheckDuplicate": True, "Driver": driver, "Internal": internal,
            "EnableIPv6": ipv6,
            "Attachable": attachable, "Options": _kv(opt), "Labels": _kv(label),
            "IPAM": {"Driver": "default", "Options": {}, "Config": configs}}
    out(current_app().client.json("POST", "/networks/create", body=body)["Id"])


@network.command("ls", usage="[OPTIONS]")
@click.option("-q", "--quiet", is_flag=True, help="Print network IDs only")
@click.option("--no-trunc", is_flag=True, help="Show network IDs in full")
@click.option("-f", "--filter", "filters", multiple=True,
              help="KEY=VALUE to select by: name, id, driver, type, label, scope, dangling")
@click.option("--format", "fmt", default=None, help=TEMPLATE_HELP)
def ls(quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """Show the networks with their driver and scope."""
    items = current_app().client.json("GET", "/networks", {"filters": filters_query(filters)})
    rows = network_contexts(items, not no_trunc)
    if quiet:
        sys.stdout.write("".join(row["ID"] + "\n" for row in rows))
        return
    sys.stdout.write(render_format(fmt if fmt and fmt != "table" else _TABLE, rows, _HEADERS))


@network.command("inspect", usage="[OPTIONS] NETWORK [NETWORK...]",
                 min_args=1)
@click.option("-f", "--format", "fmt", default=None, help="Go template run on each network, or 'json'")
@click.option("-v", "--verbose", is_flag=True, help="Accepted; a local network has nothing more to show")
@click.argument("names", **MULTI)
def inspect(fmt: str | None, verbose: bool, names: tuple[str, ...]) -> None:
    """Print networks' full JSON records."""
    from tether.cli.inspect_output import print_inspected

    client = current_app().client
    print_inspected(names, lambda name: client.json("GET", f"/networks/{name}"), fmt)


@network.command("rm", usage="NETWORK [NETWORK...]", min_args=1)
@click.argument("names", **MULTI)
def rm(names: tuple[str, ...]) -> None:
    """Delete networks that no container is on."""
    client = current_app().client
    for_each(names, lambda name: client.request("DELETE", f"/networks/{name}"))


@network.command("prune", usage="[OPTIONS]")
@click.option("-f", "--force", is_flag=True, help="Skip the are-you-sure question")
@click.option("--filter", "filters", multiple=True,
              help="label=KEY[=VALUE] or label!=...: prune only networks with (without) this "
                   "label; until=TIME: only networks made before TIME (a date or a duration ago)")
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Delete every user-defined network no container is on."""
    if not force:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least "
                         "one container.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    report = current_app().client.json("POST", "/networks/prune", {"filters": filters_query(filters)})
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        out("Deleted Networks:\n" + "".join(name + "\n" for name in deleted))


@network.command("connect", usage="[OPTIONS] NETWORK CONTAINER",
                 min_args=2)
@click.option("--alias", multiple=True, help="Extra DNS name for it on this network")
@click.option("--ip", default="", help="Fixed IPv4 address on this network")
@click.option("--ip6", default="", help="Fixed IPv6 address on this network")
@click.option("--link-local-ip", multiple=True, help="Extra link-local address on the interface")
@click.option("--link", multiple=True, help="Link NAME[:ALIAS], resolved on this network only")
@click.argument("net", required=False)
@click.argument("container", required=False)
def connect(alias: tuple[str, ...], ip: str, ip6: str, link_local_ip: tuple[str, ...],
            link: tuple[str, ...], net: str, container: str) -> None:
    """Give a container an interface on one more network."""
    _need_two("connect", container)
    config: dict[str, Any] = {"Aliases": list(alias) or None, "Links": list(link) or None}
    if ip or ip6 or link_local_ip:
        config["IPAMConfig"] = ipam_request(ip, ip6, list(link_local_ip))
    current_app().client.request("POST", f"/networks/{net}/connect",
                          body={"Container": container, "EndpointConfig": config})


@network.command("disconnect", usage="[OPTIONS] NETWORK CONTAINER",
                 min_args=2)
@click.option("-f", "--force", is_flag=True, help="No error when the container no longer exists")
@click.argument("net", required=False)
@click.argument("container", required=False)
def disconnect(force: bool, net: str, container: str) -> None:
    """Take a network's interface out of a container."""
    _need_two("disconnect", container)
    current_app().client.request("POST", f"/networks/{net}/disconnect",
                          body={"Container": container, "Force": force})


def _need_two(verb: str, container: str | None) -> None:
    if not container:
        raise CliError(f'"tether network {verb}" requires exactly 2 arguments.')


network.add_command(ls, "list")
network.add_command(rm, "remove")


def register(group: click.Group) -> None:
    group.add_command(network)
