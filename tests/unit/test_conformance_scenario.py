"""The conformance runner's pure half: scenario parsing and the normalisation that makes two
engines' outputs comparable (and must not hide real differences)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

from scenario import load, normalise, parse  # noqa: E402


def test_parse_skips_comments_and_blanks_and_numbers_steps():
    steps = parse("demo", "# intro\n\nrun -d busybox\n  # indented comment\nps -a --format '{{.Names}} x'\n")
    assert [(s.index, s.line) for s in steps] == [(0, "run -d busybox"),
                                                  (1, "ps -a --format '{{.Names}} x'")]
    assert steps[1].argv == ["ps", "-a", "--format", "{{.Names}} x"]
    assert steps[0].case_id == "demo:00:run -d busybox"


def test_normalise_ids_addresses_ports_names_times():
    long_id = "ab" * 32
    text = (f"{long_id}\n{long_id[:12]}  busybox  Up 3 seconds  0.0.0.0:49153->80/tcp  keen_dijkstra\n"
            "tcp://172.17.0.2:5432 /priceless_herschel/db\n2026-11-25T20:31:56.123Z\n")
    assert normalise(text).splitlines() == [
        "<ID>", "<ID>  busybox  Up <DUR>  0.0.0.0:<PORT>->80/tcp  <NAME>",
        "tcp://<IP>:5432 /<NAME>/db", "<TIME>"]


def test_normalise_keeps_fixed_ports_names_and_exit_codes():
    text = "0.0.0.0:8080->80/tcp lc1 Exited (137) db web/dbalias tetherd"
    assert normalise(text) == "0.0.0.0:8080->80/tcp lc1 Exited (137) db web/dbalias docker"


def test_shipped_scenarios_cover_the_issue():
    steps = load(Path(__file__).resolve().parents[1] / "conformance" / "scenarios")
    assert {s.scenario for s in steps} >= {"lifecycle", "ports", "links"} and len(steps) >= 60
