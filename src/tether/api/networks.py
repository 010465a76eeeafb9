"""Network routes of the Engine API: list, inspect, create, remove, prune, connect, disconnect.

The predefined networks (`bridge`, `host`, `none`) are views of the daemon's own setup; the
user-defined ones are the NetworkManager's records. Which containers sit on a network is the
container service's knowledge, so both services are composed here.
"""
from __future__ import annotations

import time
from typing import Any

from tether.api.http import Request, Response, Router, api_version, json_response
from tether.engine.containers import ContainerService
from tether.network import netrules
from tether.rules import apitypes
from tether.rules.errors import Forbidden


class NetworkRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.manager = containers.network

    def register(self, router: Router) -> None:
        add = router.add
        add("GET", "/networks", self.list)
        add("GET", "/networks/", self.list)  # dockerd's mux takes the trailing slash too
        add("POST", "/networks/create", self.create)
        add("POST", "/networks/prune", self.prune)
        add("GET", "/networks/{id:path}", self.inspect)
        add("DELETE", "/networks/{id:path}", self.remove)
        add("POST", "/networks/{id}/connect", self.connect)
        add("POST", "/networks/{id}/disconnect", self.disconnect)

    # ---- views ----------------------------------------------------------------------------

    def _predefined(self) -> dict[str, dict[str, Any]]:
        m = self.manager
        ids = {"bridge": {"id": m.network_id, "created": m.created}, **m.predefined}
        return {name: netrules.predefined_view(
                    name, ids[name]["id"], ids[name]["created"],
                    self.containers.attachment.network_containers(ids[name]["id"]) if name == "bridge"
                    else self._mode_containers(name),
                    bridge=m.bridge, subnet=str(m.subnet), ipv6=m.enable_ipv6,
                    subnet6=m.fixed_cidr_v6)
                for name in netrules.PREDEFINED}

    def _mode_containers(self, mode: str) -> dict[str, dict[str, str]]:
        """`host` and `none` list their running containers with empty addresses."""
        return {c.id: netrules.container_entry(c.name, {}) for c in self.containers.all()
                if c.network_mode == mode and c.state.status == "running"}

    def _views(self) -> list[dict[str, Any]]:
        views = list(self._predefined().values())
        views += [netrules.inspect_view(record, self.containers.attachment.network_containers(record.id))
                  for record in self.manager.records()]
        return views

    def _find_view(self, ref: str) -> dict[str, Any]:
        return netrules.find(self._views(), ref, lambda view: (view["Id"], view["Name"]))

    # ---- handlers -------------------------------------------------------------------------

    async def list(self, req: Request) -> Response:
        filters = req.filters()
        netrules.check_list_filters(filters)
        views = [v for v in self._views() if netrules.matches_filters(v, filters)]
        if api_version(req.api_version) >= (1, 28):
            # dockerd lists a network's endpoints only to clients older than 1.28
            views = [{**view, "Containers": {}} for view in views]
        return json_response(views)

    async def inspect(self, req: Request) -> Response:
        return json_response(self._find_view(req.params["id"]))

    async def create(self, req: Request) -> Response:
        body = req.json_as(apitypes.NETWORK_CREATE, required=True) or {}
        record = await self.manager.create_network(body)
        self.containers.events.publish("network", "create", record.id,
                                       {"name": record.name, "type": "bridge"})
        return json_response({"Id": record.id, "Warning": ""}, 201)

    async def remove(self, req: Request) -> Response:
        view = self._find_view(req.params["id"])
        await self._remove(view)
        return Response(204)

    async def _remove(self, view: dict[str, Any]) -> None:
        if view["Name"] in netrules.PREDEFINED:
            raise Forbidden(f"{view['Name']} is a pre-defined network and cannot be removed")
        if view["Containers"]:
            raise Forbidden(f"error while removing network: network {view['Name']} id "
                            f"{view['Id']} has active endpoints")
        await self.manager.remove_network(self.manager.find(view["Id"]))
        self.containers.events.publish("network", "destroy", view["Id"],
                                       {"name": view["Name"], "type": "bridge"})

    async def prune(self, req: Request) -> Response:
        prunable = netrules.prune_predicate(req.filters(), time.time())
        deleted = []
        for view in self._views():
            if view["Name"] in netrules.PREDEFINED or view["Containers"] or not prunable(view):
                continue
            await self._remove(view)
            deleted.append(view["Name"])
        self.containers.events.publish("network", "prune", "", {"reclaimed": "0"})  # as dockerd
        return json_response({"NetworksDeleted": deleted or None})

    async def connect(self, req: Request) -> Response:
        body = req.json_as(apitypes.NETWORK_CONNECT, required=True) or {}
        net_ref = self._find_view(req.params["id"])["Name"]
        await self.containers.attachment.connect_network(str(body.get("Container") or ""), net_ref,
                                              body.get("EndpointConfig") or {})
        return Response(200)

    async def disconnect(self, req: Request) -> Response:
        body = req.json_as(apitypes.NETWORK_DISCONNECT, required=True) or {}
        view = self._find_view(req.params["id"])
        net_ref = view["Name"] if view["Name"] in netrules.PREDEFINED else view["Id"]
        await self.containers.attachment.disconnect_network(str(body.get("Container") or ""), net_ref,
                                                 bool(body.get("Force")))
        return Response(200)

