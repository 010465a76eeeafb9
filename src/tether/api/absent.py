"""Routes of the Engine API 1.44 for what tether does not have: swarm mode, plugins, checkpoints,
BuildKit's session and gRPC tunnels, build cancellation, cluster volumes.

A client probing for these must see an engine without them, not a broken engine: dockerd on a
node outside any swarm answers each swarm route with 503 and one of two texts, lists no plugins,
and refuses checkpoints with 501 unless experimental. Each handler checks what dockerd checks
before it finds the feature missing (the body, a version or a stream parameter), in the same
order and with the same texts, so a client's error is the one dockerd 20.10 gives on this host
(tests/integration/test_routes_vs_docker.py walks the routes on both engines). Where dockerd
would go on and do the work (a valid `swarm init`, a plugin pull), tether refuses with an error
that names the missing feature.
"""
from __future__ import annotations

from tether.api.http import Request, Response, Router, api_version, go_atoi, json_response
from tether.engine.containers import ContainerService
from tether.rules import refs
from tether.rules.errors import ApiError, BadRequest, NotFound

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               "to connect this node to swarm and try again.")
NOT_IN_SWARM = "This node is not part of a swarm"
NO_SWARM_MODE = "tether does not support swarm mode"
NO_PLUGINS = "tether does not support plugins"
EXPERIMENTAL = ("This experimental feature is disabled by default. Start the Docker daemon in "
                "experimental mode in order to enable it.")
NO_WEBSOCKET = "tether does not support attaching over a websocket: use POST /containers/{id}/attach"
NO_UPGRADE = "no upgrade proto in request"
CLUSTER_VOLUMES = "volume update only valid for cluster volumes, but swarm is not enabled"
PLUGIN_FILTERS = frozenset({"enabled", "capability"})


class Unavailable(ApiError):
    status = 503


def _body(req: Request) -> object:
    """The JSON body dockerd decodes first: an empty one is its EOF refusal."""
    if not req.body.strip():
        raise BadRequest("got EOF while reading request body")
    return req.json()


def _version(req: Request, kind: str, go_text: bool = True) -> None:
    """The `version` an update must name (swarm's object versions), checked as dockerd parses it
    with strconv.ParseUint; secrets and configs give a shorter text."""
    raw = req.q("version", "") or ""
    if raw.isascii() and raw.isdigit() and int(raw) < 1 << 64:
        return
    if go_text:
        raise BadRequest(f"invalid {kind} version '{raw}': strconv.ParseUint: parsing "
                         f'"{raw}": invalid syntax')
    raise BadRequest(f"invalid {kind} version")


class AbsentRoutes:
    """Swarm, plugins, checkpoints, session/gRPC, build cancel, cluster volume updates, the
    websocket attach, and OPTIONS (dockerd answers any path's preflight with an empty 200)."""

    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers

    def register(self, router: Router) -> None:
        add = router.add
        for path in ("/swarm", "/swarm/unlockkey", "/nodes/{id}", "/services/{id}", "/tasks/{id}",
                     "/secrets/{id}", "/configs/{id}"):
            add("GET", path, self.not_manager)
        for path in ("/nodes", "/services", "/tasks", "/secrets", "/configs"):
            add("GET", path, self.swarm_list)
        for path in ("/nodes/{id}", "/services/{id}", "/secrets/{id}", "/configs/{id}"):
            add("DELETE", path, self.not_manager)
        for path in ("/swarm/unlock", "/services/create", "/secrets/create", "/configs/create"):
            add("POST", path, self.swarm_create)
        add("POST", "/swarm/init", self.swarm_init)
        add("POST", "/swarm/join", self.swarm_init)
        add("POST", "/swarm/leave", self.swarm_leave)
        add("POST", "/swarm/update", self.updater("swarm"))
        add("POST", "/nodes/{id}/update", self.updater("node"))
        add("POST", "/services/{id}/update", self.updater("service"))
        add("POST", "/secrets/{id}/update", self.updater("secret", go_text=False))
        add("POST", "/configs/{id}/update", self.updater("config", go_text=False))
        add("GET", "/services/{id}/logs", self.swarm_logs)
        add("GET", "/tasks/{id}/logs", self.swarm_logs)
        add("GET", "/plugins", self.plugins)
        add("GET", "/plugins/privileges", self.plugin_remote)
        add("POST", "/plugins/pull", self.plugin_install)
        add("POST", "/plugins/create", self.plugin_create)
        add("GET", "/plugins/{name:path}/json", self.plugin_missing)
        add("DELETE", "/plugins/{name:path}", self.plugin_missing)
        add("POST", "/plugins/{name:path}/enable", self.plugin_enable)
        add("POST", "/plugins/{name:path}/disable", self.plugin_missing)
        add("POST", "/plugins/{name:path}/push", self.plugin_missing)
        add("POST", "/plugins/{name:path}/set", self.plugin_set)
        add("POST", "/plugins/{name:path}/upgrade", self.plugin_upgrade)
        for method in ("GET", "POST"):
            add(method, "/containers/{id:path}/checkpoints", self.experimental)
        add("DELETE", "/containers/{id}/checkpoints/{checkpoint}", self.experimental)
        add("POST", "/session", self.session)
        add("POST", "/grpc", self.grpc)
        add("POST", "/build/cancel", self.build_cancel)
        add("PUT", "/volumes/{name}", self.volume_update)
        add("GET", "/containers/{id:path}/attach/ws", self.attach_websocket)
        add("OPTIONS", "/{any:path}", self.options)

    # ---- swarm ------------------------------------------------------------------------------

    async def not_manager(self, req: Request) -> Response:
        raise Unavailable(NOT_MANAGER)

    async def swarm_list(self, req: Request) -> Response:
        req.filters()
        raise Unavailable(NOT_MANAGER)

    async def swarm_create(self, req: Request) -> Response:
        _body(req)
        raise Unavailable(NOT_MANAGER)

    async def swarm_init(self, req: Request) -> Response:
        body = _body(req)
        if not isinstance(body, dict) or not body.get("ListenAddr"):
            raise BadRequest('invalid ListenAddr "": invalid empty address')
        raise Unavailable(NO_SWARM_MODE)

    async def swarm_leave(self, req: Request) -> Response:
        raise Unavailable(NOT_IN_SWARM)

    def updater(self, kind: str, go_text: bool = True):
        async def update(req: Request) -> Response:
            _body(req)
            _version(req, kind, go_text)
            raise Unavailable(NOT_MANAGER)
        return update

    async def swarm_logs(self, req: Request) -> Response:
        if not (req.qbool("stdout") or req.qbool("stderr")):
            raise ApiError("Bad parameters: you must choose at least one stream", 500)
        raise Unavailable(NOT_MANAGER)

    # ---- plugins: none installed, none installable ---------------------------------------------

    async def plugins(self, req: Request) -> Response:
        try:
            filters = req.filters()
        except BadRequest as exc:  # dockerd passes FromJSON's error through untyped: a 500
            raise ApiError(exc.message, 500) from None
        for key, values in filters.items():
            if key not in PLUGIN_FILTERS:
                raise BadRequest(f"Invalid filter '{key}'")
            if key == "enabled" and any(v not in ("true", "false") for v in values):
                raise BadRequest(f"Invalid filter 'enabled=[{' '.join(values)}]'")
        return json_response([])

    async def plugin_missing(self, req: Request) -> Response:
        raise NotFound(f'plugin "{req.params["name"]}" not found')

    async def plugin_enable(self, req: Request) -> Response:
        try:  # dockerd parses the timeout before it looks for the plugin, untyped: a 500
            go_atoi(req.q("timeout", "") or "")
        except BadRequest as exc:
            raise ApiError(exc.message, 500) from None
        return await self.plugin_missing(req)

    async def plugin_set(self, req: Request) -> Response:
        _body(req)
        return await self.plugin_missing(req)

    async def plugin_remote(self, req: Request) -> Response:
        _remote(req)
        raise ApiError(NO_PLUGINS, 501)

    async def plugin_install(self, req: Request) -> Response:
        _privileges(req)
        _remote(req)
        raise ApiError(NO_PLUGINS, 501)

    async def plugin_upgrade(self, req: Request) -> Response:
        _privileges(req)
        _remote(req)
        raise NotFound(f'plugin "{_with_tag(req.params["name"])}" not found')

    async def plugin_create(self, req: Request) -> Response:
        name = req.q("name", "") or ""
        try:
            refs.parse_normalized(name)
        except BadRequest as exc:
            raise ApiError(f"failed to parse reference {name}: {exc.message}", 500) from None
        raise ApiError(NO_PLUGINS, 501)

    # ---- the rest ---------------------------------------------------------------------------

    async def experimental(self, req: Request) -> Response:
        raise ApiError(EXPERIMENTAL, 501)

    async def session(self, req: Request) -> Response:
        """BuildKit's session tunnel: dockerd wants an h2c upgrade; tether has no BuildKit, so an
        upgrade is refused as dockerd refuses a protocol it does not serve."""
        raise BadRequest(_upgrade_refusal(req))

    async def grpc(self, req: Request) -> Response:
        raise ApiError(_upgrade_refusal(req), 500)

    async def build_cancel(self, req: Request) -> Response:
        """Only BuildKit builds can be cancelled; dockerd answers an unknown ID with 200."""
        if not req.q("id"):
            raise ApiError("build ID not provided", 500)
        return Response(200)

    async def volume_update(self, req: Request) -> Response:
        """API 1.42's cluster volume update: dockerd 20.10 (API 1.41) has no such route, so an
        older client gets its 404; from 1.42 later dockerd's answer outside a swarm."""
        if api_version(req.api_version) < (1, 42):
            raise NotFound("page not found")
        raise Unavailable(CLUSTER_VOLUMES)


    async def attach_websocket(self, req: Request) -> Response:
        self.containers.get(req.params["id"])
        raise ApiError(NO_WEBSOCKET, 501)

    async def options(self, req: Request) -> Response:
        return Response(200)


def _privileges(req: Request) -> None:
    if not req.body.strip():
        raise ApiError("failed to parse privileges: EOF", 500)
    req.json()


def _remote(req: Request) -> None:
    """The `remote` reference, parsed as dockerd parses it (its error untyped: a 500)."""
    try:
        refs.parse_normalized(req.q("remote", "") or "")
    except BadRequest as exc:
        raise ApiError(exc.message, 500) from None


def _with_tag(name: str) -> str:
    """The plugin name dockerd looks up in an upgrade: the name with `:latest` when untagged."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in name else f"{name}:latest"


def _upgrade_refusal(req: Request) -> str:
    proto = req.headers.get("upgrade", "") if req.wants_upgrade else ""
    return f"protocol {proto} not supported" if proto else NO_UPGRADE
