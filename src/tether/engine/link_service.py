"""Legacy links (`--link`) between containers on the default bridge: the link graph, the names
they reserve (`/web/db`), the variables and hosts lines a parent gets, and the firewall accepts
of `--icc=false`. The rules (grammar, variable names, hosts lines) are tether.engine.links.

On a user-defined network links are only names for the embedded resolver, kept in the
endpoint (tether.engine.netattach), never edges here.
"""
from __future__ import annotations

import logging
from typing import Any

from tether.rules import config as rules
from tether.engine import links as linkrules
from tether.engine.generated_files import GeneratedFiles
from tether.engine.linkgraph import Edge, LinkGraph
from tether.engine.records import Container
from tether.engine.registry import ContainerRegistry
from tether.rules.errors import ApiError, BadRequest, NotFound
from tether.rules import portspec
from tether.network.manager import NetworkManager

log = logging.getLogger("tether.containers")

HOST_LINKS_CONFLICT = ("conflicting options: host type networking can't be used with links. "
                       "This would result in undefined behavior")

Linked = list[tuple[Edge, Container]]


class LinkService:
    """The links of one daemon's containers."""

    def __init__(self, registry: ContainerRegistry, files: GeneratedFiles,
                 network: NetworkManager) -> None:
        self.registry = registry
        self.files = files
        self.network = network
        self.graph = LinkGraph()

    def resolve(self, values: list[str]) -> list[tuple[Container, str]]:
        """The containers a new container (or endpoint) links to, checked as dockerd does at
        create."""
        resolved = []
        for value in values:
            try:
                name, alias = linkrules.parse_link(value)
            except linkrules.LinkError as exc:
                raise ApiError(str(exc), 500) from None
            try:
                child = self.registry.get(name)
            except NotFound as exc:
                raise BadRequest(f"could not get container for {name}: {exc.message}") from None
            if child.network_mode == "host":
                raise BadRequest(HOST_LINKS_CONFLICT)
            resolved.append((child, alias))
        return resolved

    def register(self, parent: Container, children: list[tuple[Container, str]]) -> None:
        """Reserve `/parent/alias` for each child; a name already taken drops that link, as in
        Docker (`--link a:x --link b:x` keeps a)."""
        for child, alias in children:
            name = linkrules.link_name(parent.name, alias)
            if self.registry.name_holder(name):
                log.warning("link name taken, link ignored", extra={"ctx": {"name": name}})
                continue
            self.registry.bind_name(name, child.id)
            # the alias that names hosts lines and variables is the link name's last element
            self.graph.add(Edge(name, parent.id, child.id, child.name, name.rsplit("/", 1)[-1]))

    def reload(self, parent: Container) -> None:
        """Links are re-made from HostConfig.Links by name, as dockerd does at start: a child
        that is gone ends that container's remaining links (logged)."""
        if parent.on_user_network:
            return
        children = []
        for value in parent.host_config.links or []:
            try:
                name, alias = linkrules.parse_link(value)
                children.append((self.registry.get(name), alias))
            except (linkrules.LinkError, ApiError):  # gone, or an ambiguous name
                log.warning("failed to register link for container",
                            extra={"ctx": {"id": parent.id, "link": value}})
                break
        self.register(parent, children)

    def drop_links_of(self, parent: Container) -> None:
        for edge in self.graph.children(parent.id):
            self.graph.remove(edge.name)
            self.registry.unbind_name(edge.name)

    def rename_parent(self, parent: Container, new_name: str) -> None:
        """A renamed parent's link names move with it (`/old/db` becomes `/new/db`)."""
        for edge in self.graph.children(parent.id):
            self.graph.remove(edge.name)
            self.registry.unbind_name(edge.name)
            moved = Edge(linkrules.link_name(new_name, edge.alias), parent.id, edge.child_id,
                         edge.child_name, edge.alias)
            self.graph.add(moved)
            self.registry.bind_name(moved.name, edge.child_id)

    def linked_children(self, parent: Container) -> Linked:
        """Every link of a parent with its running child; dockerd's error for one that is not."""
        found = []
        for edge in self.graph.children(parent.id):
            child = self.registry.find(edge.child_id)
            if child is None or child.state.status != "running":
                raise ApiError(f"Cannot link to a non running container: {edge.child_name} AS "
                               f"{edge.name}", 500)
            if not child.network.get("IPAddress"):
                raise ApiError(f"Cannot link to {child.name}, as it does not belong to the "
                               "default network", 500)
            found.append((edge, child))
        return found

    def link_env(self, parent: Container) -> list[str]:
        """The link variables of a parent, from its children as they are now."""
        return env_of_links(self.linked_children(parent))

    def refresh_parents(self, child: Container) -> None:
        """A child got a new address: every running parent's hosts lines for it follow, in place;
        env vars stay as they were."""
        address = child.network.get("IPAddress")
        if not address:
            return
        for edge in self.graph.parents(child.id):
            parent = self.registry.find(edge.parent_id)
            if parent is not None and parent.state.status == "running":
                self.files.set_hosts_alias(parent, edge.alias, address)

    async def update_accepts(self) -> None:
        """With `--icc=false`, linked pairs may talk on the child's exposed ports: the accepts
        follow the containers' current addresses (Docker's go stale when a child restarts)."""
        if self.network.icc:  # every pair may talk: there is nothing to compute on this path
            return
        accepts = []
        for edge in self.graph.edges():
            parent = self.registry.find(edge.parent_id)
            child = self.registry.find(edge.child_id)
            if not (parent and child and parent.network.get("IPAddress")
                    and child.network.get("IPAddress")):
                continue
            for key in child.config.exposed_ports or {}:
                number, proto = portspec.port_key(key)
                accepts.append((proto, parent.network["IPAddress"], child.network["IPAddress"],
                                number))
        await self.network.set_link_accepts(sorted(set(accepts)))

    def remove_link(self, ref: str) -> None:
        """`docker rm --link /web/db`: free the name, unlink, drop the parent's hosts line."""
        name = "/" + ref.lstrip("/")
        edge = self.graph.get(name)
        if edge is None:
            if self.registry.name_holder(name) and name.count("/") == 1:
                raise ApiError("Conflict, cannot remove the default link name of the container", 500)
            raise NotFound(f"No such container: {ref.lstrip('/')}")
        parent = self.registry.find(edge.parent_id)
        if parent is not None:
            data = parent.to_json()
            data["host_config"]["Links"] = [
                v for v in parent.host_config.links or []
                if linkrules.link_name(parent.name, linkrules.parse_link(v)[1]) != name]
            self.registry.save_or_fail(parent, data)
            parent.host_config.links = data["host_config"]["Links"]
        self.graph.remove(name)
        self.registry.unbind_name(name)
        if parent is not None and parent.state.status == "running":
            self.files.remove_hosts_alias(parent, edge.alias)

    def inspect_links(self, parent: Container) -> list[str] | None:
        """Inspect's `HostConfig.Links`, rebuilt from the graph (`/db:/web/db`)."""
        links = []
        for edge in self.graph.children(parent.id):
            child = self.registry.find(edge.child_id)
            links.append(f"{child.name if child else edge.child_name}:{edge.name}")
        return links or None

    def names_of(self, child: Container) -> list[str]:
        """The link names a container is known by, for the list's Names."""
        return self.graph.names_of(child.id)

    def links_view(self, parent: Container) -> list[dict[str, Any]]:
        """tether's link report: each link of a parent, the child now, and whether the
        parent's first process still holds an address the child no longer has."""
        view = []
        for edge in self.graph.children(parent.id):
            child = self.registry.find(edge.child_id)
            running = child is not None and child.state.status == "running"
            address = child.network.get("IPAddress", "") if running else ""
            started_with = parent.link_ips.get(edge.name, "")
            stale = bool(parent.state.status == "running" and started_with and address
                         and started_with != address)
            env = rules.process_env(parent.config.env, parent.config.hostname, parent.tty,
                                    parent.started_link_env) if stale else []
            view.append({
                "Name": edge.name, "Parent": parent.name, "Alias": edge.alias,
                "Child": child.name if child else edge.child_name, "ChildID": edge.child_id,
                "ChildRunning": running, "IPAddress": address,
                "Ports": sorted((child.config.exposed_ports or {}).keys()) if child else [],
                "Stale": stale,
                "StaleVariables": linkrules.stale_variables(env, edge.name, started_with, address)
                if stale else []})
        return view

    def dependency_order(self, containers: list[Container]) -> list[Container]:
        """Linked containers before the containers that link to them."""
        done: dict[str, Container] = {}
        seen: set[str] = set()

        def visit(c: Container) -> None:
            if c.id in seen:
                return
            seen.add(c.id)
            for edge in self.graph.children(c.id):
                child = self.registry.find(edge.child_id)
                if child is not None:
                    visit(child)
            done[c.id] = c
        for c in containers:
            visit(c)
        return list(done.values())


def env_of_links(linked: Linked) -> list[str]:
    env: list[str] = []
    for edge, child in linked:
        env += linkrules.link_env(edge.name, child.network["IPAddress"],
                                  (child.config.exposed_ports or {}).keys(),
                                  child.config.env or [])
    return env


def hosts_of_links(linked: Linked) -> list[tuple[str, str]]:
    return [linkrules.hosts_line(edge.alias, child.network["IPAddress"], child.config.hostname,
                                 child.name.lstrip("/")) for edge, child in linked]
