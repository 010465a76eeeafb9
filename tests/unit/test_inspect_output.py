"""docker's inspect output, shared by `tether inspect` and `tether volume inspect`."""
from __future__ import annotations

import pytest

from tether.cli.client import CliError
from tether.cli.inspect_output import print_inspected

OBJECTS = {"a": {"Name": "a", "Labels": None}, "b": {"Name": "b", "Labels": {"k": "v"}}}


def lookup(name: str) -> dict:
    if name not in OBJECTS:
        raise CliError(f"Error: No such object: {name}")
    return OBJECTS[name]


def test_format_json_prints_one_compact_list(capsys) -> None:
    print_inspected(["a", "b"], lookup, "json")
    assert capsys.readouterr().out == \
        '[{"Name":"a","Labels":null},{"Name":"b","Labels":{"k":"v"}}]\n'


def test_default_is_indented_and_missing_names_fail_after_the_found_ones(capsys) -> None:
    with pytest.raises(CliError) as caught:
        print_inspected(["nope", "a", "gone"], lookup, None)
    assert capsys.readouterr().out.startswith('[\n    {\n        "Name": "a",')
    assert caught.value.message == "Error: No such object: nope\nError: No such object: gone"


def test_nothing_found_prints_an_empty_list(capsys) -> None:
    with pytest.raises(CliError):
        print_inspected(["nope"], lookup, "json")
    assert capsys.readouterr().out == "[]\n"


def test_template_sees_the_view_once_per_object(capsys) -> None:
    print_inspected(["a", "b"], lookup, "{{.Name}}={{len .Labels}}",
                    lambda obj: {**obj, "Labels": obj["Labels"] or {}})
    assert capsys.readouterr().out == "a=0\nb=1\n"


def test_template_execution_error_flushes_an_empty_line_first(capsys) -> None:
    with pytest.raises(CliError) as caught:
        print_inspected(["a"], lookup, "{{.Nope.X}}")
    assert capsys.readouterr().out == "\n"
    assert caught.value.message.startswith("template parsing error: template: :1:7: executing")
    assert caught.value.code == 1


def test_template_parse_error_exits_64_before_any_lookup(capsys) -> None:
    with pytest.raises(CliError) as caught:
        print_inspected(["nope"], lookup, "{{.Name")
    assert caught.value.code == 64 and capsys.readouterr().out == ""
