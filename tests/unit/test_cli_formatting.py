"""ps/images tables and PORTS grouping, from fixed API JSON (expected texts from docker 28)."""
from tether.cli.formatting import (container_names, display_ports, ellipsis, go_quote,
                                   images_table, ps_table, tabwrite)


def _p(private: int, proto: str = "tcp", ip: str = "", public: int = 0) -> dict:
    port = {"PrivatePort": private, "Type": proto}
    if ip:
        port.update(IP=ip, PublicPort=public)
    return port


def test_ports_exposed_and_published() -> None:
    ports = [_p(80, ip="0.0.0.0", public=8080), _p(90), _p(80, ip="::", public=8080)]
    assert display_ports(ports) == "90/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


def test_ports_ranges_and_protocols() -> None:
    ports = [_p(80), _p(81), _p(90), _p(80, "udp")]
    assert display_ports(ports) == "80-81/tcp, 90/tcp, 80/udp"
    same = [_p(p, ip=ip, public=p) for p in (8000, 8001, 8002) for ip in ("0.0.0.0", "::")]
    assert display_ports(same) == "0.0.0.0:8000-8002->8000-8002/tcp, [::]:8000-8002->8000-8002/tcp"


def test_ports_spec_example_cli28() -> None:
    ports = [_p(80), _p(443, ip="0.0.0.0", public=443), _p(443, ip="::", public=443), _p(2019),
             _p(443, "udp"), _p(8080, ip="0.0.0.0", public=8080), _p(8080, ip="::", public=8080)]
    assert display_ports(ports) == ("80/tcp, 0.0.0.0:443->443/tcp, [::]:443->443/tcp, 2019/tcp,"
                                    " 443/udp, 0.0.0.0:8080->8080/tcp, [::]:8080->8080/tcp")
    assert display_ports(None) == ""


def test_tabwrite_minwidth_padding_and_unpadded_last_column() -> None:
    assert tabwrite([["A", "BB", "C"], ["longer-cell", "", "x"]]) == (
        "A             BB        C\nlonger-cell             x\n")


def test_command_cell() -> None:
    assert go_quote(ellipsis("sh -c 'echo hi; exit 3'", 20)) == '"sh -c \'echo hi; exi…"'
    assert go_quote('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


def test_names() -> None:
    assert container_names(["/web/db", "/db"], trunc=True) == "db"
    assert container_names(["/web/db", "/db"], trunc=False) == "web/db,db"


PS_ITEMS = [
    {"Id": "a8b97b21514c74a952d023a81f6a33b724c16c8e1ee0f000fd594eec90fd0e41", "Names": ["/ex"],
     "Image": "busybox", "Command": "sh -c 'echo hi; exit 3'", "Created": 1000,
     "Status": "Exited (3) 5 minutes ago", "Ports": []},
    {"Id": "175a4230006bb975a3d516d4550b465fa710ca8fb630d7becfd1b5d3133c935c", "Names": ["/web"],
     "Image": "busybox", "Command": "sleep 1000", "Created": 1000, "Status": "Up 6 minutes",
     "Ports": [_p(80, ip="0.0.0.0", public=8080), _p(90), _p(80, ip="::", public=8080)]},
]


def test_ps_table_matches_docker() -> None:
    assert ps_table(PS_ITEMS, now=1000 + 361) == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                     PORTS                                             NAMES\n"
        "a8b97b21514c   busybox   \"sh -c 'echo hi; exi…\"   6 minutes ago   Exited (3) 5 minutes ago                                                     ex\n"
        "175a4230006b   busybox   \"sleep 1000\"             6 minutes ago   Up 6 minutes               90/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web\n"
    )


def test_ps_table_with_size() -> None:
    item = dict(PS_ITEMS[1], Ports=[], SizeRw=0, SizeRootFs=1990000)
    assert ps_table([item], with_size=True, now=1000).splitlines()[1].endswith(
        "web       0B (virtual 1.99MB)")


def test_images_table() -> None:
    items = [{"Id": "sha256:abf1c3e763d6ceb09be3f6063023a83954224f62d7128a24ffc4dfdf60fec10c",
              "RepoTags": ["busybox:latest", "localhost:5000/bb:1"], "Created": 0, "Size": 1983000},
             {"Id": "sha256:" + "1" * 64, "RepoTags": None, "Created": 0, "Size": 5}]
    assert images_table(items, now=400) == (
        "REPOSITORY          TAG       IMAGE ID       CREATED         SIZE\n"
        "busybox             latest    abf1c3e763d6   6 minutes ago   1.98MB\n"
        "localhost:5000/bb   1         abf1c3e763d6   6 minutes ago   1.98MB\n"
        "<none>              <none>    111111111111   6 minutes ago   5B\n"
    )
