"""The docker Python SDK (docker-py 7) against tetherd."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_sdk_run_exec_logs(daemon):
    import docker
    client = daemon.sdk()
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.44"
    assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    assert err.value.exit_status == 3
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name="sdk1")
    try:
        assert c.status in ("created", "running")
        c.reload()
        assert c.status == "running" and c.name == "sdk1"
        # stdout and stderr are two pipes: their relative order is not defined, so each stream
        # is checked on its own (demux), which also shows they stay apart
        code, (out, err) = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"], demux=True)
        assert (code, out, err) == (2, b"out\n", b"err\n")
        code, output = c.exec_run("cat /etc/hostname", tty=True)
        assert code == 0 and output.strip() == c.id[:12].encode()
        assert [x.id for x in client.containers.list()] == [c.id]
        c.restart(timeout=0)
        c.kill(signal="SIGKILL")
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("sdk1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuch:image")
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.create("busybox", name="a b")
    assert err.value.status_code == 400
    assert "busybox:latest" in client.images.get("busybox").tags
