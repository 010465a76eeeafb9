"""Go template subset: outputs and error texts compared with what docker printed."""
import pytest

from tether.cli.template import ExecError, ParseError, Template

DATA = {
    "Name": "/ex", "Args": ["-c", "echo hi"],
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                  "443/tcp": None}},
    "State": {"ExitCode": 3, "Running": False},
}


@pytest.mark.parametrize("src,expected", [
    ("{{.Name}}", "/ex"),
    ("{{.State.ExitCode}}", "3"),
    ("{{json .Args}}", '["-c","echo hi"]'),
    ("{{json .Config.Labels}}", '{"b":"2","a":"1"}'),
    ("{{range $k, $v := .NetworkSettings.Ports}}{{$k}};{{end}}", "443/tcp;80/tcp;"),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "8080"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "down"),
    ("{{if eq .State.ExitCode 0}}ok{{else if eq .State.ExitCode 3}}three{{end}}", "three"),
    ('{{join .Args " "}}', "-c echo hi"),
    ("a{{println}}b", "a\nb"),
    ("{{.Name | upper}} {{lower \"AB\"}}", "/EX ab"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Args}}", "[-c echo hi]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Nope}}", "<no value>"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range .Config.Cmd}}x{{else}}empty{{end}}", "empty"),
    ("{{- .Name -}}  \n x", "/exx"),
    ('{{printf "%s-%d" .Name .State.ExitCode}}', "/ex-3"),
    ('{{.State.ExitCode | printf "%5d"}}', "    3"),
    ("{{len .Args}}", "2"),
    ("{{$n := .Name}}{{$n}}", "/ex"),
    ("{{with .Config}}{{.Env}}{{end}}", "[A=1 B=2]"),
    ("{{/* comment */}}z", "z"),
    ("{{range $i, $e := .Args}}{{$i}}={{$e}} {{end}}", "0=-c 1=echo hi "),
])
def test_render(src: str, expected: str) -> None:
    assert Template(src).render(DATA) == expected


@pytest.mark.parametrize("src,message", [
    ("{{foo .Id}}", 'template: :1: function "foo" not defined'),
    ("{{.Id", "template: :1: unclosed action"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{.Name}} {{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
])
def test_parse_errors(src: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        Template(src)
    assert str(info.value) == message


@pytest.mark.parametrize("src,message", [
    ("{{.Nope.X}}", 'template: :1:7: executing "" at <.Nope.X>: map has no entry for key "Nope"'),
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("{{.Args.X}}",
     'template: :1:7: executing "" at <.Args.X>: can\'t evaluate field X in type interface {}'),
])
def test_missing_key_errors_like_docker_inspect(src: str, message: str) -> None:
    with pytest.raises(ExecError) as info:
        Template(src, missing_key_error=True).render(DATA)
    assert str(info.value) == message
