"""Dockerfile parsing into stages and the texts the legacy builder records for each step."""
import pytest

from tether.image.build import instructions as ins
from tether.rules import times
from tether.rules.errors import BadRequest

DOCKERFILE = """\
ARG BASE=busybox
FROM ${BASE} AS Build
RUN echo hi
COPY --chown=1:1 --from=x a* /b/
FROM busybox
ENV A=1 B="2 3"
CMD ["sh"]
"""


def test_meta_args_and_stages() -> None:
    parsed = ins.parse(DOCKERFILE)
    assert [m.args for m in parsed.meta_args] == [("BASE=busybox",)]
    assert [(s.name, s.base, s.original) for s in parsed.stages] == [
        ("build", "${BASE}", "FROM ${BASE} AS Build"), ("", "busybox", "FROM busybox")]
    assert parsed.steps() == 7
    copy = parsed.stages[0].instructions[1]
    assert copy.flags == {"chown": "1:1", "from": "x"} and copy.args == ("a*", "/b/")


def test_target_cuts_after_the_stage_and_unknown_targets_fail() -> None:
    parsed = ins.parse(DOCKERFILE, target="build")
    assert len(parsed.stages) == 1 and parsed.steps() == 4
    with pytest.raises(BadRequest, match="failed to reach build target nope in Dockerfile"):
        ins.parse(DOCKERFILE, target="nope")


def test_refusals() -> None:
    with pytest.raises(BadRequest, match="no build stage"):
        ins.parse("RUN true\n")
    with pytest.raises(BadRequest, match="^dockerfile parse error line 2: Unknown flag: bogus$"):
        ins.parse("FROM busybox\nCOPY --bogus=1 a b\n")
    with pytest.raises(BadRequest, match="^dockerfile parse error line 3: unknown instruction: FOO$"):
        ins.parse("FROM busybox\n\nFOO bar\n")
    with pytest.raises(BadRequest, match="line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"):
        ins.parse("FROM busybox\nONBUILD ONBUILD RUN true\n")
    with pytest.raises(BadRequest, match="line 2: FROM isn't allowed as an ONBUILD trigger"):
        ins.parse("FROM busybox\nONBUILD FROM x\n")
    with pytest.raises(BadRequest, match="line 2: ONBUILD requires at least one argument"):
        ins.parse("FROM busybox\nONBUILD\n")


def test_onbuild_triggers_parse_as_their_instruction() -> None:
    copy = ins.trigger("COPY --from=build /a /b")
    assert (copy.cmd, copy.flags, copy.args) == ("COPY", {"from": "build"}, ("/a", "/b"))
    assert ins.command_form(ins.trigger('RUN ["echo", "hi"]')) == ["echo", "hi"]
    with pytest.raises(BadRequest, match="Unknown flag: bogus"):  # checked when the trigger runs
        ins.trigger("COPY --bogus=1 a b")


def test_label_options_become_literal_steps_of_the_last_stage() -> None:
    parsed = ins.parse(DOCKERFILE, target="build", labels={"z": "$HOME", "a": "1 2"})
    added = parsed.stages[-1].instructions[-2:]
    assert [i.original for i in added] == ["LABEL a=1 2", "LABEL z=$HOME"]
    assert ins.pairs(added[1], {"HOME": "/root"}) == [("z", "$HOME")]
    assert parsed.steps() == 6


def test_env_pairs_are_expanded_and_unquoted() -> None:
    inst = ins.parse(DOCKERFILE).stages[1].instructions[0]
    assert ins.pairs(inst, {}) == [("A", "1"), ("B", "2 3")]


def test_recorded_texts() -> None:
    assert ins.nop("ENV A=1") == ["/bin/sh", "-c", "#(nop) ", "ENV A=1"]
    assert ins.nop_layer("WORKDIR /app") == ["/bin/sh", "-c", "#(nop) WORKDIR /app"]
    assert ins.go_quote_list(["sh", "-c", 'say "hi"']) == '["sh" "-c" "say \\"hi\\""]'
    assert ins.copy_comment("COPY", "1000:1000", "dir:abc", "/app/") == \
        "COPY --chown=1000:1000dir:abc in /app/ "  # Docker's missing space, kept
    assert ins.copy_comment("ADD", "", "file:abc", "x") == "ADD file:abc in x "
    assert ins.build_arg_prefix({"B": "2", "A": "1"}) == ["|2", "A=1", "B=2"]
    assert ins.build_arg_prefix({}) == []
    assert ins.expose_text(["8080", "53/udp"]) == "EXPOSE 53/udp 8080"


def test_command_forms() -> None:
    stage = ins.parse('FROM busybox\nRUN ["echo", "a b"]\nRUN echo $X\n').stages[0]
    assert ins.command_form(stage.instructions[0]) == ["echo", "a b"]
    assert ins.command_form(stage.instructions[1]) == ["/bin/sh", "-c", "echo $X"]


def test_arg_default_and_copy_sources() -> None:
    stage = ins.parse("FROM busybox\nARG A=${B:-x}\nARG C\nCOPY $D b /dst/\n").stages[0]
    assert ins.arg_default(stage.instructions[0], {}) == ("A", "x")
    assert ins.arg_default(stage.instructions[1], {}) == ("C", None)
    assert ins.copy_sources(stage.instructions[2], {"D": "a"}) == (["a", "b"], "/dst/")


def test_go_formatting_of_recorded_values() -> None:
    assert [times.go_duration(n) for n in (0, 2500, 500 * 10**6, 1500 * 10**6, 5 * 10**9, 90 * 10**9,
                                         3600 * 10**9, 3725 * 10**9)] == [
        "0s", "2.5µs", "500ms", "1.5s", "5s", "1m30s", "1h0m0s", "1h2m5s"]
    assert [ins.go_rune(n) for n in (0, 3, 10, 65, 39)] == ["'\\x00'", "'\\x03'", "'\\n'", "'A'", "'\\''"]
    assert ins.go_list(["/bin/sh", "-ec"]) == "[/bin/sh -ec]"
    health = {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 90 * 10**9,
              "Timeout": 5 * 10**9, "Retries": 3}
    assert ins.healthcheck_text(health) == \
        'HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] "1m30s" "5s" "0s" \'\\x03\'}'
    assert ins.nop("ENV A=1", ["/bin/bash", "-c"]) == ["/bin/bash", "-c", "#(nop) ", "ENV A=1"]
