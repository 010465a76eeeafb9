"""Host device nodes given to a container (`--device`), found as dockerd's devicesFromPath finds
them: a symlink followed, a node taken with its type, numbers, mode and owner, a directory walked
for the nodes under it. The host's paths are the API client's (trusted, as root on the host);
nothing here touches a container's files: runc makes the nodes in the container's /dev."""
from __future__ import annotations

import os
import stat
from typing import Any

from tether.rules.errors import ApiError


def _node(path: str, container_path: str, access: str) -> tuple[dict, dict] | None:
    """(OCI device, its cgroup rule) of a device node, None for anything else."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    device = {"path": container_path, "type": kind, "major": major, "minor": minor,
              "fileMode": stat.S_IMODE(st.st_mode) & 0o777, "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": access}
    return device, rule


def host_devices(mappings: list[dict[str, Any]] | None) -> tuple[list[dict], list[dict]]:
    """OCI `linux.devices` and the device cgroup rules of HostConfig.Devices; a path that is
    neither a node nor a directory holding nodes fails the start with dockerd's text (500)."""
    devices: list[dict] = []
    rules: list[dict] = []
    for mapping in mappings or []:
        on_host = mapping.get("PathOnHost") or ""
        in_container = mapping.get("PathInContainer") or ""
        access = mapping.get("CgroupPermissions") or ""
        resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
        found = _node(resolved, in_container, access)
        if found is not None:
            devices.append(found[0])
            rules.append(found[1])
            continue
        before = len(devices)
        if os.path.isdir(resolved):
            for parent, dirs, files in os.walk(resolved):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(parent, name)
                    child = _node(path, path.replace(resolved, in_container, 1), access)
                    if child is not None:
                        devices.append(child[0])
                        rules.append(child[1])
        if len(devices) > before:
            continue
        reason = "not a device node" if os.path.exists(resolved) else "no such file or directory"
        raise ApiError("error gathering device information while adding custom device "
                       f'"{on_host}": {reason}')
    return devices, rules
