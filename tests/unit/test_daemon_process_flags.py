"""tetherd's container defaults: --default-ulimit, --init, --init-path, --log-driver, --log-opt."""
from __future__ import annotations

import pytest

from tether import daemon


def defaults(*flags: str):
    return daemon.process_defaults(daemon.parse_args(list(flags)))


def test_defaults() -> None:
    d = defaults()
    assert (d.ulimits, d.init, d.init_path) == ({}, False, "")
    assert d.log_config == {"Type": "json-file", "Config": {}}


def test_flags_taken() -> None:
    d = defaults("--default-ulimit", "nofile=10:20", "--default-ulimit", "nofile=30",
                 "--init", "--init-path", "/x/tini", "--log-driver", "local",
                 "--log-opt", "max-size=1m")
    assert d.ulimits == {"nofile": {"Name": "nofile", "Soft": 30, "Hard": 30}}
    assert (d.init, d.init_path) == (True, "/x/tini")
    assert d.log_config == {"Type": "local", "Config": {"max-size": "1m"}}
    assert defaults("--init=false").init is False


@pytest.mark.parametrize("flags,message", [
    (["--default-ulimit", "nofile=3:2"], 'tetherd: invalid argument "nofile=3:2" for '
     '"--default-ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 3 > 2'),
    (["--log-driver", "foo"],
     'tetherd: error looking up logging plugin foo: plugin "foo" not found'),
    (["--log-driver", "syslog"],  # dockerd's, which tether does not apply: named
     "tetherd: tether does not support HostConfig.LogConfig.Type yet"),
    (["--log-opt", "compress=true"],
     "tetherd: tether does not support HostConfig.LogConfig.Config.compress yet"),
    (["--log-opt", "max-size=x"], "tetherd: failed to initialize logging driver: invalid size: 'x'"),
    (["--log-opt", "nokey"], 'tetherd: invalid argument "nokey" for "--log-opt" flag: invalid key '
     "value pair format in log opts"),
])
def test_bad_flags_stop_the_daemon(flags, message) -> None:
    with pytest.raises(SystemExit) as info:
        defaults(*flags)
    assert str(info.value) == message
