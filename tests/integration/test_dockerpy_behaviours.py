"""Where our tests cover what docker-py 7.1.0's integration suite checks of exec, TTYs, build,
load, namespace modes, volume drivers, prune and network connect (its tests are not in the PyPI
sdist, so `make test` cannot run them; run them by hand with scripts/dockerpy_suite.py on a
docker-py source tree). Each line: docker-py's test, then ours
(module::function), every one compared with Docker 20.10 or checked on a running container.

api_exec_test ExecDemuxTest (tty, stream/no stream, demux/no demux)
    -> test_tty_vs_docker::test_exec_terminal_from_create_framing_from_start
    -> test_tty_vs_docker::test_exec_tty_output
api_exec_test ExecDemuxTest (no tty) -> test_sdk_items::test_exec_run_stream_and_demux
models_containers_test ContainerTest.test_exec_run_failed
    -> test_tty_vs_docker::test_exec_not_startable
    -> test_tty_vs_docker::test_cli_exec_not_startable
terminal bytes of run -t, exec -t and attach (the `\\r\\n` ExecDemuxTest expects)
    -> test_tty_vs_docker::test_run_tty_output
    -> test_tty_vs_docker::test_typed_input
api_build_test BuildTest.test_build_with_cache_from -> test_build_params_vs_docker::test_cache_from
api_build_test BuildTest.test_build_with_extra_hosts -> test_build_params_vs_docker::test_extra_hosts
api_build_test BuildTest.test_build_with_network_mode
    -> test_build_params_vs_docker::test_network_mode
api_build_test BuildTest.test_build_in_context_nested_dockerfile, test_build_in_context_dockerfile
    -> test_build_params_vs_docker::test_dockerfile_inside_context
models_images_test ImageCollectionTest.test_load_error
    -> test_build_params_vs_docker::test_load_of_no_tar
    -> test_build_params_vs_docker::test_cli_load_of_no_tar

api_container_test PruneTest.test_prune_containers -> test_prune_vs_docker::test_prunes_as_docker
api_container_test CreateContainerTest.test_create_with_host_pid_mode
    -> test_pid_mode_vs_docker::test_host_pid_mode_as_docker
api_container_test CreateContainerTest.test_create_with_uts_mode
    -> test_uts_mode_vs_docker::test_host_uts_mode_as_docker
api_container_test CreateContainerTest.test_create_with_cgroupns
    -> test_cgroupns_vs_docker::test_private_cgroupns_as_docker
models_containers_test ContainerTest.test_create_with_volume_driver
    -> test_volume_driver_vs_docker::test_volume_driver_as_docker
api_network_test TestNetworks.test_connect_with_mac_address
    -> test_endpoint_mac_vs_docker::test_mac_shown_before_start_as_docker
    -> test_endpoint_mac_vs_docker::test_mac_applied_at_start
api_network_test TestNetworks.test_connect_with_links
    -> test_connect_links_vs_docker::test_connect_links_as_docker
api_network_test TestNetworks.test_create_with_linklocal_ips
    -> test_bridge_link_local_vs_docker::test_sdk_create_shows_and_applies_them_as_docker
    -> test_bridge_link_local_vs_docker::test_cli_run_and_connect_as_docker
api_network_test TestNetworks.test_create_with_driveropt (refused by tether, naming the key)
    -> test_bridge_link_local_vs_docker::test_endpoint_driver_opts_refused_by_key
api_container_test AttachContainerTest.test_attach_no_stream
    -> test_attach_logs_vs_docker::test_sdk_attach_without_stream
    -> test_attach_logs_vs_docker::test_attach_to_a_stopped_container_as_docker

The test below keeps this list true: every test it names exists.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_every_listed_test_exists():
    listed = re.findall(r"-> (\w+)::(\w+)", __doc__ or "")
    assert listed
    for module, function in listed:
        tree = ast.parse((HERE / f"{module}.py").read_text())
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in names, f"{module}::{function} is listed but does not exist"
