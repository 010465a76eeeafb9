"""`--change` parsing; expected values are what Docker 20.10's `docker import -c` produced."""
from typing import Any

import pytest

from tether.image.changes import apply_changes, expand, parse_duration, split_words
from tether.rules.errors import BadRequest


@pytest.mark.parametrize("changes, expected", [
    (["CMD echo hi"], {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
    (['CMD ["a", "b"]'], {"Cmd": ["a", "b"]}),
    (["cmd"], {"Cmd": ["/bin/sh", "-c"]}),
    (["CMD [not json"], {"Cmd": ["/bin/sh", "-c", "[not json"]}),
    (["ENTRYPOINT echo a"], {"Entrypoint": ["/bin/sh", "-c", "echo a"]}),
    (['ENTRYPOINT ["/bin/sh"]'], {"Entrypoint": ["/bin/sh"]}),
    (["ENV a=b"], {"Env": ["a=b"]}),
    (["ENV x y z"], {"Env": ["x=y z"]}),
    (['ENV a="b c" d=e'], {"Env": ["a=b c", "d=e"]}),
    (["ENV p=$PATH q=${a}x"], {"Env": ["p=", "q=x"]}),
    (["ENV a=1", "ENV b=$a c=${a:-d} e=${zz:-f} g=${a:+h}", "ENV a=2"], {"Env": ["a=2", "b=1", "c=1", "e=f", "g=h"]}),
    (["ENV a='$x' b=\\$y"], {"Env": ["a=$x", "b=$y"]}),
    (["EXPOSE 80 443/udp"], {"ExposedPorts": {"80/tcp": {}, "443/udp": {}}}),
    (["EXPOSE 80-82"], {"ExposedPorts": {"80/tcp": {}, "81/tcp": {}, "82/tcp": {}}}),
    (['LABEL a=b "c d"=e'], {"Labels": {"a": "b", "c d": "e"}}),
    (["WORKDIR /x", "WORKDIR y/../z"], {"WorkingDir": "/x/z"}),
    (["WORKDIR rel"], {"WorkingDir": "/rel"}),
    (["USER nobody"], {"User": "nobody"}),
    (["VOLUME /data /v2"], {"Volumes": {"/data": {}, "/v2": {}}}),
    (['VOLUME ["/a"]'], {"Volumes": {"/a": {}}}),
    (["ONBUILD RUN ls"], {"OnBuild": ["RUN ls"]}),
    (["HEALTHCHECK --interval=5s CMD true"], {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5 * 10**9}}),
    (['HEALTHCHECK --retries=3 --timeout=1m30s CMD ["t", "x"]'],
     {"Healthcheck": {"Test": ["CMD", "t", "x"], "Timeout": 90 * 10**9, "Retries": 3}}),
    (["HEALTHCHECK NONE"], {"Healthcheck": {"Test": ["NONE"]}}),
])
def test_changes(changes: list[str], expected: dict[str, Any]) -> None:
    assert apply_changes({}, changes) == expected


def test_input_config_not_modified() -> None:
    base = {"Env": ["a=1"]}
    assert apply_changes(base, ["ENV b=2"]) == {"Env": ["a=1", "b=2"]}
    assert base == {"Env": ["a=1"]}


@pytest.mark.parametrize("change, message", [
    ("STOPSIGNAL SIGKILL", "stopsignal is not a valid change command"),
    ("FROM x", "from is not a valid change command"),
    ("RUN x", "run is not a valid change command"),
    ("ENV", "ENV requires at least one argument"),
    ("ENV a", "ENV must have two arguments"),
    ("ENV a=b c", "Syntax error - can't find = in 'c'. Must be of the form: name=value"),
    ("LABEL a", "LABEL must have two arguments"),
    ("EXPOSE", "EXPOSE requires at least one argument"),
    ("EXPOSE abc", "Invalid containerPort: abc"),
    ("EXPOSE 80/xyz", "invalid proto: xyz"),
    ("WORKDIR a b", "WORKDIR requires exactly one argument"),
    ("USER", "USER requires exactly one argument"),
    ("VOLUME", "VOLUME requires at least one argument"),
    ('VOLUME [""]', "VOLUME specified can not be an empty string"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=5x CMD x", 'time: invalid duration "5x"'),
])
def test_bad_changes(change: str, message: str) -> None:
    with pytest.raises(BadRequest) as exc:
        apply_changes({}, [change])
    assert exc.value.message == message


def test_split_words_keeps_quotes_for_expansion() -> None:
    assert split_words(""" a="b c"  'd e'\\ f """) == ['a="b c"', "'d e'\\ f"]
    assert expand('"$v"\'$v\'', {"v": "1"}) == "1$v"


@pytest.mark.parametrize("text, ns", [("0", 0), ("1h", 3600 * 10**9), ("1.5s", 1_500_000_000), ("300ms", 3 * 10**8)])
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns
