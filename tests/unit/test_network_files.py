"""The text of /etc/hosts, /etc/hostname and /etc/resolv.conf (Docker 20.10's)."""
from __future__ import annotations

from tether.network.files import hostname_file, hosts_file, resolv_conf

LOCAL = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def test_hostname_file():
    assert hostname_file("abc") == "abc\n"


def test_hosts_without_address():
    assert hosts_file("abc") == LOCAL


def test_hosts_with_address_extra_and_links():
    text = hosts_file("abc", "172.17.0.3", extra=[("10.0.0.1", "db.local")],
                      links=[("172.17.0.2", "mydb 3f2a1b4c5d6e db")])
    assert text == LOCAL + ("10.0.0.1\tdb.local\n172.17.0.2\tmydb 3f2a1b4c5d6e db\n"
                            "172.17.0.3\tabc\n")


def test_hosts_own_line_with_domain_or_dotted_name():
    assert hosts_file("web", "1.2.3.4", domainname="example.com").endswith(
        "1.2.3.4\tweb.example.com web\n")
    assert hosts_file("a.b.c", "1.2.3.4").endswith("1.2.3.4\ta.b.c a\n")


def test_resolv_drops_loopback_and_ipv6_and_keeps_the_rest():
    host = ("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fe80::1\n"
            "search a.example b.example\noptions ndots:2\noptions edns0\nsortlist 10.0.0.0\n")
    assert resolv_conf(host) == ("nameserver 10.0.0.2\nsearch a.example b.example\n"
                                 "options ndots:2 edns0\nsortlist 10.0.0.0\n")


def test_resolv_falls_back_to_public_servers():
    assert resolv_conf("nameserver 127.0.0.1\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_dns_options_replace():
    assert resolv_conf("nameserver 10.0.0.2\nsearch x\n", dns=["1.1.1.1"], dns_search=["."],
                       dns_options=["ndots:1"]) == "nameserver 1.1.1.1\noptions ndots:1\n"
