"""Running a parsed Dockerfile step by step, as Docker's legacy builder does: an engine service,
as RUN steps run in the engine's containers (the build rules themselves are in image/build/).

Each step starts from the current image and ends with a new one whose parent is it:
- metadata instructions (ENV, LABEL, ARG, EXPOSE, VOLUME, USER, CMD, ENTRYPOINT, SHELL,
  HEALTHCHECK, STOPSIGNAL, MAINTAINER, ONBUILD) change the config only: a container is created
  for the step (never started) and the image gets an empty layer (their plans: build_steps.py);
- WORKDIR, COPY and ADD change files: they work on an overlay of the current image mounted in the
  build's scratch directory, and the overlay's upper dir becomes the step's layer;
- RUN runs in a real container of the engine (create, attach, start, wait through the
  ContainerService, on the default bridge), and that container's upper dir becomes the layer.
Before doing any of that the step's recorded ContainerConfig is looked up in the cache.
Output goes through `out` as the messages Docker streams: `{"stream": "Step 1/9 : FROM busybox\n"}`
..., and the progress of a pull when a FROM image is missing and a `pull` function is given.
"""
from __future__ import annotations

import asyncio
import codecs
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from tether.engine.build_steps import (METADATA_PLANS, Stage, Step, allowed_args,
                                       expansion_env, new_config, nop, nop_layer, shell_of)
from tether.engine.containers import ContainerService
from tether.image.build import cache, context
from tether.image.build import instructions as ins
from tether.image.build.commit import commit, commit_upper, write_layer
from tether.image.build.copier import GLOB, clean_path, copy_source, find_sources, make_dirs, owner
from tether.image.changes import expand
from tether.image.store import Image, ImageStore, container_config
from tether.rules.buildcontext import DEFAULT_DOCKERFILE
from tether.rules.config import env_key
from tether.rules.errors import ApiError, BadRequest, NotFound
from tether.runtime import mounts

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STDERR_COLOUR, RESET_COLOUR = "\033[91m", "\033[0m"
Output = Callable[[dict[str, Any]], None]
Pull = Callable[[str, Output], None]  # pull(reference, emit) in a worker thread


class BuildError(ApiError):
    """A failed build, with the exit code the CLI takes (`errorDetail.code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message, 500)
        self.code = code


@dataclass
class BuildOptions:
    dockerfile: str = DEFAULT_DOCKERFILE
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    rm: bool = True
    force_rm: bool = False
    target: str = ""
    cache_from: list[str] | None = None  # image names; None: every local image may be a hit
    network_mode: str = ""  # of the RUN containers: "" is dockerd's default
    extra_hosts: list[str] = field(default_factory=list)  # host:ip lines for their /etc/hosts


class Builder:
    """Builds images into `store`, running RUN steps as containers of `containers`."""

    def __init__(self, store: ImageStore, containers: ContainerService, scratch: Path,
                 pull: Pull | None = None) -> None:
        self.store = store
        self.containers = containers
        self.scratch = scratch
        self.pull = pull
        if scratch.is_dir():  # what a daemon killed mid-build left: mounts and temporary files
            for leftover in scratch.iterdir():
                _remove_workspace(leftover)

    async def build(self, context_tar: BinaryIO, options: BuildOptions, out: Output) -> Image:
        """Build from a context tar; returns the final image (tagging is `tag`'s job)."""
        workspace = self.scratch / secrets.token_hex(8)
        workspace.mkdir(parents=True)
        try:
            root = workspace / "context"
            root.mkdir()
            await asyncio.to_thread(context.unpack_context, context_tar, root)
            text = context.read_dockerfile(root, options.dockerfile)
            await asyncio.to_thread(context.apply_dockerignore, root)
            parsed = ins.parse(text, options.target, options.labels)
            run = _Run(self, parsed, root, workspace, options, out)
            image = await run.all_stages()
        finally:
            await asyncio.to_thread(_remove_workspace, workspace)
        return image


def _remove_workspace(workspace: Path) -> None:
    for target in workspace.glob("*/rootfs"):
        mounts.unmount(target)
    shutil.rmtree(workspace, ignore_errors=True)


class _Run:
    """One build: the steps of every stage in order, numbered as Docker numbers them."""

    def __init__(self, builder: Builder, parsed: ins.Dockerfile, root: Path, workspace: Path,
                 options: BuildOptions, out: Output) -> None:
        self.b = builder
        self.parsed = parsed
        self.context = root
        self.workspace = workspace
        self.options = options
        self.emit = out
        self.step = 0
        self.total = parsed.steps()
        self.meta: dict[str, str | None] = {}
        self.consumed: set[str] = set()
        self.stages: list[Stage] = []

    def out(self, text: str) -> None:
        self.emit({"stream": text})

    def _announce(self, original: str) -> None:
        self.step += 1
        self.out(f"Step {self.step}/{self.total} : {original}\n")

    async def all_stages(self) -> Image:
        for inst in self.parsed.meta_args:
            self._announce(inst.original)
            name, default = ins.arg_default(inst, self._meta_env())
            self.consumed.add(name)
            self.meta[name] = self._arg_value(name, default)
        for stage in self.parsed.stages:
            state = await self._from(stage)
            self.stages.append(state)
            for inst in stage.instructions:
                self._announce(inst.original)
                await self._dispatch(state, inst)
        unused = sorted(set(self.options.build_args) - self.consumed)
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        final = self.stages[-1].image
        if final is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return final

    def _arg_value(self, name: str, default: str | None) -> str | None:
        given = self.options.build_args.get(name)
        return given if given is not None else default

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    # --- FROM ---

    async def _from(self, stage: ins.Stage) -> Stage:
        self._announce(stage.original)
        base = expand(stage.base, self._meta_env())
        image = None
        named = [s for s, parsed in zip(self.stages, self.parsed.stages) if parsed.name
                 and parsed.name == base.lower()]
        if named:
            image = named[-1].image
        elif base.lower() != "scratch":
            image = await self._base_image(base)
        config = dict((image.config.get("config") if image else None) or container_config())
        env = list(config.get("Env") or [])
        if not any(env_key(e) == "PATH" for e in env):
            env.append(DEFAULT_PATH)
        config["Env"] = env
        triggers, config["OnBuild"] = list(config.get("OnBuild") or []), None
        state = Stage(image, config)
        if triggers:  # the base image's ONBUILD triggers run first, within this step
            self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for text in triggers:
                await self._dispatch(state, ins.trigger(text), show_id=False)
        self.out(f" ---> {state.image.short_id if state.image else ''}\n")
        return state

    async def _base_image(self, name: str) -> Image:
        """A FROM image from the store, pulled first when it is not there (as dockerd does)."""
        try:
            return await asyncio.to_thread(self.b.store.resolve, name)
        except NotFound:
            if self.b.pull is None:
                raise
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.b.pull, name, lambda msg: loop.call_soon_threadsafe(self.emit, msg))
        return await asyncio.to_thread(self.b.store.resolve, name)

    # --- dispatch ---

    async def _dispatch(self, state: Stage, inst: ins.Instruction, show_id: bool = True) -> None:
        """Plan a step, take it from the cache or do it; `show_id=False` for ONBUILD triggers,
        whose images Docker does not print one by one."""
        handler = METADATA_PLANS.get(inst.cmd.upper()) or getattr(self, f"_plan_{inst.cmd.lower()}")
        # planning reads files (COPY's sources are hashed, `--from` stages mounted): off the loop
        step: Step = await asyncio.to_thread(handler, state, inst)
        parent_id = state.image.id if state.image else ""
        recorded = container_config({**step.config, "Cmd": step.recorded, "Image": parent_id,
                                     **({"Entrypoint": None} if step.kind == "run" else {})})
        if not self.options.no_cache:
            hit = await asyncio.to_thread(cache.lookup, self.b.store, parent_id, recorded,
                                          self._cache_sources())
            if hit is not None:
                self.out(" ---> Using cache\n" + (f" ---> {hit.short_id}\n" if show_id else ""))
                state.image, state.config = hit, step.config
                return
        if step.kind == "run":
            image = await self._run_step(state, step, recorded)
        elif step.kind == "fs":
            image = await self._fs_step(state, step, recorded, inst.cmd == "WORKDIR")
        else:
            image = await self._nop_step(state, step, recorded)
        if show_id:
            self.out(f" ---> {image.short_id}\n")
        state.image, state.config = image, step.config

    def _plan_arg(self, state: Stage, inst: ins.Instruction) -> Step:
        name, default = ins.arg_default(inst, expansion_env(state))
        self.consumed.add(name)
        if default is None and name in self.meta:
            default = self.meta[name]  # an ARG without a value takes the meta ARG's
        state.args[name] = self._arg_value(name, default)
        text = f"ARG {name}" + (f"={inst.args[0].partition('=')[2]}" if "=" in inst.args[0] else "")
        return Step(nop(state, text), new_config(state), "nop")

    # --- filesystem instructions ---

    def _plan_workdir(self, state: Stage, inst: ins.Instruction) -> Step:
        words = ins.words(inst, expansion_env(state))
        if len(words) != 1:
            raise BadRequest("WORKDIR requires exactly one argument")
        requested = words[0]
        if not requested.startswith("/"):
            requested = f"{state.config.get('WorkingDir') or '/'}/{requested}"
        workdir = clean_path(requested)

        def make(rootfs: Path) -> None:
            make_dirs(rootfs, workdir, 0, 0)
        return Step(nop_layer(state, f"WORKDIR {workdir}"), new_config(state, WorkingDir=workdir),
                     "fs", apply=make)

    def _plan_copy(self, state: Stage, inst: ins.Instruction) -> Step:
        return self._plan_copy_or_add(state, inst)

    def _plan_add(self, state: Stage, inst: ins.Instruction) -> Step:
        return self._plan_copy_or_add(state, inst)

    def _plan_copy_or_add(self, state: Stage, inst: ins.Instruction) -> Step:
        if "chmod" in inst.flags:
            raise BuildError("the --chmod option requires BuildKit. Refer to "
                             "https://docs.docker.com/go/buildkit/ to learn how to build images "
                             "with BuildKit enabled")
        patterns, dest = ins.copy_sources(inst, expansion_env(state))
        if any(p.startswith(("http://", "https://")) for p in patterns) and inst.cmd == "ADD":
            raise BuildError("tether: ADD from a URL is not supported (the build has no network "
                             "access to fetch it); download the file into the build context and "
                             "ADD or COPY it from there")
        source_root = self._source_root(inst)
        sources = find_sources(source_root, patterns, inst.cmd, from_context="from" not in inst.flags)
        if (len(sources) > 1 or any(set(p) & GLOB for p in patterns)) and not dest.endswith("/"):
            raise BuildError(f"When using {inst.cmd} with more than one source file, the destination "
                             "must be a directory and end with a /")
        workdir = state.config.get("WorkingDir") or "/"
        target = clean_path(dest if dest.startswith("/") else f"{workdir}/{dest}")
        as_dir = dest.endswith("/") or dest in (".", "./") or len(patterns) > 1
        chown = inst.flags.get("chown", "")
        extract = inst.cmd == "ADD"
        text = ins.copy_comment(inst.cmd, chown, cache.source_hash(sources), dest)

        def copy(rootfs: Path) -> None:
            uid, gid = owner(rootfs, chown)
            for source in sources:
                copy_source(rootfs, source, target, as_dir, uid, gid, extract)
        return Step(nop_layer(state, text), new_config(state), "fs", apply=copy)

    def _source_root(self, inst: ins.Instruction) -> Path:
        name = inst.flags.get("from")
        if name is None:
            return self.context
        for index, (state, parsed) in enumerate(zip(self.stages, self.parsed.stages)):
            if name.lower() == parsed.name or name == str(index):
                return self._mount_read_only(state.image)
        return self._mount_read_only(self.b.store.resolve(name))

    def _mount_read_only(self, image: Image | None) -> Path:
        """A stage's or an image's files, mounted for COPY --from (unmounted with the workspace)."""
        scratch = self.workspace / secrets.token_hex(4)
        rootfs = scratch / "rootfs"
        lowers = (self.b.store.lower_dirs(image) if image else []) or [_empty(scratch)]
        mounts.mount_overlay(lowers, scratch / "upper", scratch / "work", rootfs)
        return rootfs

    # --- RUN ---

    def _plan_run(self, state: Stage, inst: ins.Instruction) -> Step:
        cmd = ins.command_form(inst, shell_of(state))
        args = allowed_args(state)
        env = list(state.config.get("Env") or []) + [f"{k}={v}" for k, v in sorted(args.items())]
        return Step([*ins.build_arg_prefix(args), *cmd], new_config(state), "run", run=cmd, env=env)

    def _cache_sources(self) -> list[Image] | None:
        """The `cache_from` images that exist (dockerd skips the others)."""
        if self.options.cache_from is None:
            return None
        sources = []
        for name in self.options.cache_from:
            try:
                sources.append(self.b.store.resolve(name))
            except ApiError:
                continue
        return sources

    # --- doing the steps ---

    async def _step_container(self, state: Stage, step: Step) -> str:
        """A container for a step, as the legacy builder makes one ("Running in ...")."""
        assert state.image is not None
        cmd = step.run or step.recorded
        body = {"Image": state.image.id, "Entrypoint": cmd[:1], "Cmd": cmd[1:],
                "Env": step.env if step.env is not None else state.config.get("Env"),
                "WorkingDir": state.config.get("WorkingDir") or "", "User": state.config.get("User") or "",
                "AttachStdout": True, "AttachStderr": True,
                "HostConfig": {"NetworkMode": self.options.network_mode or "default",
                               "ExtraHosts": list(self.options.extra_hosts) or None}}
        c = await self.b.containers.create(body, None)
        self.out(f" ---> Running in {c.id[:12]}\n")
        return c.id

    async def _remove_container(self, cid: str) -> None:
        try:
            await self.b.containers.remove(cid, force=True, volumes=True)
        except NotFound:
            return
        self.out(f"Removing intermediate container {cid[:12]}\n")

    async def _nop_step(self, state: Stage, step: Step, recorded: dict[str, Any]) -> Image:
        cid = ""
        if state.image is not None:
            cid = await self._step_container(state, step)
        try:
            return await self._commit(state, step, _as_created(recorded, cid), cid, None)
        finally:
            if cid:
                await self._remove_container(cid)

    async def _fs_step(self, state: Stage, step: Step, recorded: dict[str, Any],
                       with_container: bool) -> Image:
        cid = await self._step_container(state, step) if with_container and state.image else ""
        try:
            layer = await asyncio.to_thread(self._layer_of_change, state.image, step)
            try:
                return await self._commit(state, step, _as_created(recorded, cid), cid, layer)
            finally:
                if layer is not None:
                    layer.unlink(missing_ok=True)
        finally:
            if cid:
                await self._remove_container(cid)

    def _layer_of_change(self, image: Image | None, step: Step) -> Path | None:
        """Mount the image with a fresh upper dir, apply the step, return the upper dir's tar
        (None when the step changed nothing: an empty layer, as Docker records it)."""
        assert step.apply is not None
        scratch = self.workspace / secrets.token_hex(4)
        rootfs, upper = scratch / "rootfs", scratch / "upper"
        lowers = (self.b.store.lower_dirs(image) if image else []) or [_empty(scratch)]
        mounts.mount_overlay(lowers, upper, scratch / "work", rootfs)
        try:
            step.apply(rootfs)
        finally:
            mounts.unmount(rootfs)
        tar = self.workspace / f"{scratch.name}.tar"
        with open(tar, "wb") as f:
            changed = write_layer(upper, f)
        shutil.rmtree(scratch, ignore_errors=True)
        if changed:
            return tar
        tar.unlink()
        return None

    async def _run_step(self, state: Stage, step: Step, recorded: dict[str, Any]) -> Image:
        if state.image is None:
            raise BuildError("tether cannot RUN on an empty (scratch) filesystem: no shell to run")
        cid = await self._step_container(state, step)
        succeeded = False
        try:
            try:
                code = await self._run_container(cid)
            except asyncio.CancelledError:  # the client went away: the step's process goes too
                await self._remove_container(cid)
                raise
            if code != 0:
                command = " ".join(step.run or [])
                raise BuildError(f"The command '{command}' returned a non-zero code: {code}", code)
            upper = self.b.containers.paths.upper(cid)
            image = await asyncio.to_thread(commit_upper, self.b.store, upper, state.image, step.config,
                                            {**recorded, "Hostname": ""}, cid, author=state.maintainer)
            succeeded = True
            return image
        finally:
            if (succeeded and self.options.rm) or self.options.force_rm:
                await self._remove_container(cid)

    async def _run_container(self, cid: str) -> int:
        """Start the step's container with its output streamed to the build; its exit code."""
        services = self.b.containers
        result = services.waiter(cid, "next-exit")
        attaching = asyncio.ensure_future(services.attach(cid))
        await asyncio.sleep(0)  # the attach registers before start, so no output is missed
        try:
            await services.start(cid)
        except ApiError:
            attaching.cancel()
            raise
        attachment = await attaching
        decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in (1, 2)}
        if attachment is not None:
            try:
                while (packet := await attachment.read()) is not None:
                    self._output(packet[0], decoders[packet[0]].decode(packet[1]))
            finally:
                attachment.close()
        for number, decoder in decoders.items():
            self._output(number, decoder.decode(b"", final=True))
        return await result()

    def _output(self, stream: int, text: str) -> None:
        """A RUN's output; stderr in red, as the legacy builder's stderr formatter writes it."""
        if text:
            self.out(text if stream == 1 else f"{STDERR_COLOUR}{text}{RESET_COLOUR}")

    async def _commit(self, state: Stage, step: Step, recorded: dict[str, Any], cid: str,
                      layer: Path | None) -> Image:
        def store() -> Image:
            if layer is None:
                return commit(self.b.store, state.image, step.config, recorded, cid, None,
                              author=state.maintainer)
            with open(layer, "rb") as f:
                return commit(self.b.store, state.image, step.config, recorded, cid, f,
                              author=state.maintainer)
        return await asyncio.to_thread(store)


def _as_created(recorded: dict[str, Any], cid: str) -> dict[str, Any]:
    """The ContainerConfig of a step made through a container: what dockerd stored for that
    container, with its hostname and labels as an object, never null."""
    if not cid:
        return recorded
    return {**recorded, "Hostname": cid[:12], "Labels": recorded.get("Labels") or {}}


def _empty(scratch: Path) -> Path:
    """An empty lower dir: overlayfs needs one, and FROM scratch (with or without metadata
    steps) has no layer."""
    path = scratch / "empty"
    path.mkdir(parents=True, exist_ok=True)
    return path
