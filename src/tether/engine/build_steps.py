"""The Dockerfile steps that change only an image's config (ENV, LABEL, EXPOSE, VOLUME, USER,
CMD, ENTRYPOINT, STOPSIGNAL, MAINTAINER, ONBUILD, SHELL, HEALTHCHECK), as plans the builder
(engine/builder.py) takes from the cache or commits: each is a pure function of the stage's
state and the instruction, recording the `#(nop)` text Docker's legacy builder records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tether.image.build import instructions as ins
from tether.image.changes import port_specs, set_healthcheck
from tether.image.store import Image
from tether.rules.config import env_key
from tether.rules.errors import BadRequest


@dataclass
class Stage:
    """What a stage's steps change: the image so far, its run config, the ARGs in scope."""

    image: Image | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False  # a CMD of this stage: a later ENTRYPOINT keeps it
    maintainer: str = ""   # MAINTAINER: the author of this stage's next images


@dataclass
class Step:
    """One step's plan: what it records, the config it leaves, and how it changes files."""

    recorded: list[str]                         # ContainerConfig.Cmd
    config: dict[str, Any]
    kind: str                                   # "nop", "fs" or "run"
    apply: Callable[[Path], None] | None = None  # for "fs": changes the mounted rootfs
    run: list[str] | None = None                # for "run": the command
    env: list[str] | None = None                # for "run": config env plus build args


def env_map(env: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


def set_env(env: list[str], key: str, value: str) -> list[str]:
    """Replace `key` in place or append it (Docker keeps the variable's first position)."""
    entry = f"{key}={value}"
    for n, item in enumerate(env):
        if env_key(item) == key:
            return [*env[:n], entry, *env[n + 1:]]
    return [*env, entry]


def shell_of(state: Stage) -> list[str]:
    """The stage's SHELL: what shell-form commands and recorded `#(nop)` steps run with."""
    return list(state.config.get("Shell") or ins.SHELL)


def expansion_env(state: Stage) -> dict[str, str]:
    env = env_map(state.config.get("Env") or [])
    return {**allowed_args(state), **env}

def allowed_args(state: Stage) -> dict[str, str]:
    """Build args in effect in the stage (declared, with a value, not shadowed by ENV)."""
    env = env_map(state.config.get("Env") or [])
    return {k: v for k, v in state.args.items() if v is not None and k not in env}


def new_config(state: Stage, **changes: Any) -> dict[str, Any]:
    return {**state.config, "Image": state.image.id if state.image else "", **changes}

def nop(state: Stage, text: str) -> list[str]:
    return ins.nop(text, shell_of(state))

def nop_layer(state: Stage, text: str) -> list[str]:
    return ins.nop_layer(text, shell_of(state))


def plan_env(state: Stage, inst: ins.Instruction) -> Step:
    env = list(state.config.get("Env") or [])
    text = "ENV"
    for key, value in ins.pairs(inst, expansion_env(state)):
        env = set_env(env, key, value)
        text += f" {key}={value}"
    return Step(nop(state, text), new_config(state, Env=env), "nop")

def plan_label(state: Stage, inst: ins.Instruction) -> Step:
    labels = dict(state.config.get("Labels") or {})
    text = "LABEL"
    for key, value in ins.pairs(inst, expansion_env(state)):
        labels[key] = value
        text += f" {key}={value}"
    return Step(nop(state, text), new_config(state, Labels=labels), "nop")

def plan_expose(state: Stage, inst: ins.Instruction) -> Step:
    words = ins.words(inst, expansion_env(state))
    ports = dict(state.config.get("ExposedPorts") or {})
    for word in words:
        ports.update({p: {} for p in port_specs(word)})
    return Step(nop(state, ins.expose_text(words)), new_config(state, ExposedPorts=ports), "nop")

def plan_volume(state: Stage, inst: ins.Instruction) -> Step:
    paths = ins.words(inst, expansion_env(state))
    if not paths:
        raise BadRequest("VOLUME requires at least one argument")
    volumes = dict(state.config.get("Volumes") or {})
    volumes.update({p: {} for p in paths})
    return Step(nop(state, f"VOLUME [{' '.join(paths)}]"), new_config(state, Volumes=volumes),
                 "nop")

def plan_user(state: Stage, inst: ins.Instruction) -> Step:
    words = ins.words(inst, expansion_env(state))
    if len(words) != 1:
        raise BadRequest("USER requires exactly one argument")
    return Step(nop(state, f"USER {words[0]}"), new_config(state, User=words[0]), "nop")

def plan_cmd(state: Stage, inst: ins.Instruction) -> Step:
    cmd = ins.command_form(inst, shell_of(state))
    state.cmd_set = True
    return Step(nop(state, f"CMD {ins.go_quote_list(cmd)}"), new_config(state, Cmd=cmd), "nop")

def plan_entrypoint(state: Stage, inst: ins.Instruction) -> Step:
    entrypoint = ins.command_form(inst, shell_of(state))
    # as Docker: a new ENTRYPOINT drops the CMD inherited from the base image
    return Step(nop(state, f"ENTRYPOINT {ins.go_quote_list(entrypoint)}"),
                 new_config(state, Entrypoint=entrypoint,
                                  Cmd=state.config.get("Cmd") if state.cmd_set else None),
                 "nop")

def plan_stopsignal(state: Stage, inst: ins.Instruction) -> Step:
    words = ins.words(inst, expansion_env(state))
    if len(words) != 1:
        raise BadRequest("STOPSIGNAL requires exactly one argument")
    return Step(nop(state, f"STOPSIGNAL {words[0]}"),
                 new_config(state, StopSignal=words[0]), "nop")

def plan_maintainer(state: Stage, inst: ins.Instruction) -> Step:
    state.maintainer = " ".join(inst.args)
    return Step(nop(state, f"MAINTAINER {state.maintainer}"), new_config(state), "nop")

def plan_onbuild(state: Stage, inst: ins.Instruction) -> Step:
    trigger = inst.original.split(None, 1)[1].strip()
    config = new_config(state, OnBuild=list(state.config.get("OnBuild") or []) + [trigger])
    return Step(nop(state, f"ONBUILD {trigger}"), config, "nop")

def plan_shell(state: Stage, inst: ins.Instruction) -> Step:
    if not inst.json_form or not inst.args:
        raise BadRequest("SHELL requires the arguments to be in JSON form")
    shell = list(inst.args)
    config = new_config(state, Shell=shell)
    return Step(ins.nop(f"SHELL {ins.go_list(shell)}", shell), config, "nop")

def plan_healthcheck(state: Stage, inst: ins.Instruction) -> Step:
    config = new_config(state)
    set_healthcheck(config, inst.original.split(None, 1)[1] if " " in inst.original.strip() else "")
    return Step(nop(state, ins.healthcheck_text(config["Healthcheck"])), config, "nop")


METADATA_PLANS: dict[str, Callable[[Stage, ins.Instruction], Step]] = {
    "ENV": plan_env,
    "LABEL": plan_label,
    "EXPOSE": plan_expose,
    "VOLUME": plan_volume,
    "USER": plan_user,
    "CMD": plan_cmd,
    "ENTRYPOINT": plan_entrypoint,
    "STOPSIGNAL": plan_stopsignal,
    "MAINTAINER": plan_maintainer,
    "ONBUILD": plan_onbuild,
    "SHELL": plan_shell,
    "HEALTHCHECK": plan_healthcheck,
}
