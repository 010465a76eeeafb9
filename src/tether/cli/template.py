"""A subset of Go's text/template, enough for the `-f/--format` strings people give docker.

Supported: fields and chains (`.A.B`, `$v.A`, `$`), literals, pipelines (`a | b`), parentheses,
variables (`$x := ...`), `if`/`else if`/`else`, `range` (with `$i, $v :=`, and `else`), `with`,
comments, trim markers (`{{-`, `-}}`), Go's builtins (and or not len index print printf println
eq ne lt le gt ge) and docker's extras (json join split title lower upper pad truncate).
Values print as Go's fmt does for decoded JSON: maps as `map[k:v]` (sorted keys), lists as `[a b]`.
Error texts follow Go's (`template: :1: unexpected {{end}}`), because users compare them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable


class TemplateError(Exception):
    """Base class; `str()` is the text after docker's `template parsing error: ` prefix."""


class ParseError(TemplateError):
    pass


class ExecError(TemplateError):
    pass


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key yields; prints `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


# ----------------------------------------------------------------------------------------------
# Lexing
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<declare>:=) | (?P<assign>=) | (?P<pipe>\|) | (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,)
      | (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<raw>`[^`]*`)
      | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+))
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
      | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<dot>\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}


@dataclass
class _Tok:
    kind: str
    value: str
    pos: int


def _lex_action(src: str, start: int, line: int) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if not m:
            raise ParseError(f"template: :{line}: unexpected {src[i]!r} in command")
        kind = m.lastgroup or ""
        if kind != "space":
            toks.append(_Tok(kind, m.group(), start + i))
        i = m.end()
    return toks


# ----------------------------------------------------------------------------------------------
# Nodes
@dataclass
class _Operand:
    kind: str  # field, var, dot, lit, ident, pipe
    value: Any
    pos: int
    text: str
    chain: list[str] = field(default_factory=list)
    chain_pos: int = 0


@dataclass
class _Pipeline:
    decl: list[str]
    cmds: list[list[_Operand]]
    pos: int
    text: str


@dataclass
class _Action:
    pipe: _Pipeline


@dataclass
class _Block:
    kind: str  # if, range, with
    pipe: _Pipeline
    body: list[Any]
    alt: list[Any]


class _Parser:
    """Recursive descent over the items (text and actions) of a template."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.items = self._split(src)
        self.i = 0

    def _line(self, pos: int) -> int:
        return self.src.count("\n", 0, pos) + 1

    def _split(self, src: str) -> list[tuple[str, Any, int]]:
        items: list[tuple[str, Any, int]] = []
        i = 0
        while True:
            j = src.find("{{", i)
            if j < 0:
                items.append(("text", src[i:], i))
                return items
            end = src.find("}}", j + 2)
            if end < 0:
                raise ParseError(f"template: :{self._line(j)}: unclosed action")
            inner_start, inner_end = j + 2, end
            text = src[i:j]
            if src.startswith("- ", inner_start) or src.startswith("-\t", inner_start):
                text = text.rstrip()
                inner_start += 1
            trim_right = src[inner_end - 2:inner_end] in (" -", "\t-")
            if trim_right:
                inner_end -= 1
            items.append(("text", text, i))
            inner = src[inner_start:inner_end]
            if not inner.strip().startswith("/*"):
                items.append(("action", _lex_action(inner, inner_start, self._line(j)), j))
            i = end + 2
            if trim_right:
                stripped = src[i:].lstrip()
                i = len(src) - len(stripped)

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise ParseError(f"template: :{self._line(stop[1])}: unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], tuple[str, int, list[_Tok]] | None]:
        """Parse until end of input or an `else`/`end`, which is returned to the caller."""
        nodes: list[Any] = []
        while self.i < len(self.items):
            kind, payload, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                if payload:
                    nodes.append(payload)
                continue
            toks: list[_Tok] = payload
            if not toks:
                raise ParseError(f"template: :{self._line(pos)}: missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.value in ("else", "end"):
                return nodes, (head.value, pos, toks[1:])
            if head.kind == "ident" and head.value in ("if", "range", "with"):
                nodes.append(self._block(head.value, toks[1:], pos))
            elif head.kind == "ident" and head.value in _KEYWORDS:
                raise ParseError(f"template: :{self._line(pos)}: {head.value} is not supported")
            else:
                nodes.append(_Action(self._pipeline(toks, pos, "command")))
        return nodes, None

    def _block(self, kind: str, toks: list[_Tok], pos: int) -> _Block:
        pipe = self._pipeline(toks, pos, kind)
        body, stop = self._list()
        alt: list[Any] = []
        if stop is None:
            raise ParseError(f"template: :{self._line(pos)}: unexpected EOF")
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "ident" and rest[0].value == "if" and kind == "if":
                alt = [self._block("if", rest[1:], stop[1])]
                return _Block(kind, pipe, body, alt)
            alt, stop = self._list()
            if stop is None or stop[0] != "end":
                raise ParseError(f"template: :{self._line(pos)}: expected end; found {stop}")
        return _Block(kind, pipe, body, alt)

    def _pipeline(self, toks: list[_Tok], pos: int, context: str) -> _Pipeline:
        line = self._line(pos)
        decl: list[str] = []
        if len(toks) >= 2 and toks[0].kind == "variable":
            if toks[1].kind in ("declare", "assign"):
                decl, toks = [toks[0].value], toks[2:]
            elif (toks[1].kind == "comma" and len(toks) >= 4 and toks[2].kind == "variable"
                  and toks[3].kind in ("declare", "assign")):
                decl, toks = [toks[0].value, toks[2].value], toks[4:]
        if not toks:
            raise ParseError(f"template: :{line}: missing value for {context}")
        text = self.src[toks[0].pos:toks[-1].pos + len(toks[-1].value)]
        cmds: list[list[_Operand]] = [[]]
        k = 0
        while k < len(toks):
            tok = toks[k]
            if tok.kind == "pipe":
                if not cmds[-1]:
                    raise ParseError(f"template: :{line}: missing command")
                cmds.append([])
                k += 1
                continue
            operand, k = self._operand(toks, k, line)
            cmds[-1].append(operand)
        if not cmds[-1]:
            raise ParseError(f"template: :{line}: missing command")
        return _Pipeline(decl, cmds, toks[0].pos, text)

    def _operand(self, toks: list[_Tok], k: int, line: int) -> tuple[_Operand, int]:
        tok = toks[k]
        if tok.kind == "lparen":
            depth, j = 1, k + 1
            while j < len(toks) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(toks[j].kind, 0)
                j += 1
            if depth:
                raise ParseError(f"template: :{line}: unclosed left paren")
            inner = self._pipeline(toks[k + 1:j - 1], tok.pos, "parenthesized pipeline")
            op = _Operand("pipe", inner, tok.pos, f"({inner.text})")
            if j < len(toks) and toks[j].kind == "field" and toks[j].pos == toks[j - 1].pos + 1:
                op.chain, op.chain_pos = toks[j].value.split(".")[1:], toks[j].pos
                j += 1
            return op, j
        if tok.kind == "field":
            names = tok.value.split(".")[1:]
            second = tok.pos + 1 + len(names[0]) if len(names) > 1 else tok.pos
            return _Operand("field", names, tok.pos, tok.value, chain_pos=second), k + 1
        if tok.kind == "variable":
            name, *chain = tok.value.split(".")
            return _Operand("var", name, tok.pos, tok.value, chain, tok.pos), k + 1
        if tok.kind == "dot":
            return _Operand("dot", None, tok.pos, "."), k + 1
        if tok.kind in ("string", "raw"):
            value = json.loads(tok.value) if tok.kind == "string" else tok.value[1:-1]
            return _Operand("lit", value, tok.pos, tok.value), k + 1
        if tok.kind == "number":
            num = float(tok.value) if re.search(r"[.eE]", tok.value) and "x" not in tok.value.lower() \
                else int(tok.value, 0)
            return _Operand("lit", num, tok.pos, tok.value), k + 1
        if tok.kind == "ident":
            if tok.value in ("true", "false"):
                return _Operand("lit", tok.value == "true", tok.pos, tok.value), k + 1
            if tok.value == "nil":
                return _Operand("lit", None, tok.pos, tok.value), k + 1
            if tok.value not in FUNCS:
                raise ParseError(f'template: :{line}: function "{tok.value}" not defined')
            return _Operand("ident", tok.value, tok.pos, tok.value), k + 1
        raise ParseError(f"template: :{line}: unexpected {tok.value!r} in operand")


# ----------------------------------------------------------------------------------------------
# Printing and truth, as Go's fmt and text/template see decoded JSON.
def go_str(value: Any) -> str:
    """Go's `%v` of a JSON-decoded value."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings/lists/maps are false."""
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, dict)):
        return bool(value)
    return True


def _json(value: Any) -> str:
    if value is NO_VALUE:
        value = None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, (list, str)) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise ExecError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise ExecError(f"error calling index: can't index item of type {_go_type(item)}")
    return item


def _go_type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}",
             dict: "map[string]interface {}"}
    return names.get(type(value), "interface {}")


def _sprint(*args: Any) -> str:
    """Go's fmt.Sprint: a space between operands when neither side is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(arg)
    return out


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    """Go's Sprintf for the verbs people use (%s %v %d %q %x %f), with flags and widths."""
    values = list(args)

    def one(m: re.Match[str]) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        if not values:
            return f"%!{verb}(MISSING)"
        value = values.pop(0)
        spec = flags + width + (f".{prec}" if prec else "")
        if verb == "d" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"%{spec}d" % int(value)
        if verb in "xX" and isinstance(value, int):
            return f"%{spec}{verb}" % value
        if verb in "feg" and isinstance(value, (int, float)):
            return f"%{spec}{verb}" % value
        if verb == "q":
            return f"%{spec}s" % json.dumps(go_str(value), ensure_ascii=False)
        return f"%{spec}s" % go_str(value)

    return _VERB.sub(one, fmt)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, *others: Any) -> bool:
        try:
            return any(op(a, b) for b in others) if op is _eq else op(a, others[0])
        except TypeError as exc:
            raise ExecError("error calling comparison: incompatible types for comparison") from exc
    return compare


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _truncate(value: Any, n: int) -> str:
    text = go_str(value)
    return text[:n] if len(text) > n else text


FUNCS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "not": lambda a: not truth(a),
    "len": lambda a: len(a),
    "index": _index,
    "print": _sprint,
    "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _compare(_eq),
    "ne": _compare(lambda a, b: a != b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "json": _json,
    "join": lambda items, sep: sep.join(go_str(x) for x in (items or [])),
    "split": lambda text, sep: text.split(sep),
    "title": lambda text: go_str(text).title(),
    "lower": lambda text: go_str(text).lower(),
    "upper": lambda text: go_str(text).upper(),
    "pad": lambda text, left, right: " " * left + go_str(text) + " " * right,
    "truncate": _truncate,
}


# ----------------------------------------------------------------------------------------------
# Execution
class Template:
    """A parsed template; `render(data)` executes it against JSON-like data."""

    def __init__(self, src: str, missing_key_error: bool = False) -> None:
        self.src = src
        self.missing_key_error = missing_key_error
        self.nodes = _Parser(src).parse()

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, [("$", data)], out)
        return "".join(out)

    def _where(self, pos: int, text: str) -> str:
        line = self.src.count("\n", 0, pos) + 1
        col = pos - (self.src.rfind("\n", 0, pos) + 1)
        return f'template: :{line}:{col}: executing "" at <{text}>: '

    def _run(self, nodes: list[Any], dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, _Action):
                value = self._pipe(node.pipe, dot, scope)
                if not node.pipe.decl:
                    out.append(go_str(value))
            else:
                self._block(node, dot, list(scope), out)

    def _block(self, node: _Block, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        if node.kind == "range":
            self._range(node, dot, scope, out)
            return
        value = self._pipe(node.pipe, dot, scope, bind=False)
        if node.pipe.decl:
            scope.append((node.pipe.decl[-1], value))
        if truth(value):
            self._run(node.body, value if node.kind == "with" else dot, scope, out)
        else:
            self._run(node.alt, dot, scope, out)

    def _range(self, node: _Block, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        value = self._pipe(node.pipe, dot, scope, bind=False)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is NO_VALUE:
            pairs = []
        else:
            raise ExecError(self._where(node.pipe.pos, node.pipe.text)
                            + f"range can't iterate over {go_str(value)}")
        for key, item in pairs:
            inner = list(scope)
            if len(node.pipe.decl) == 2:
                inner += [(node.pipe.decl[0], key), (node.pipe.decl[1], item)]
            elif node.pipe.decl:
                inner.append((node.pipe.decl[0], item))
            self._run(node.body, item, inner, out)
        if not pairs:
            self._run(node.alt, dot, scope, out)

    def _pipe(self, pipe: _Pipeline, dot: Any, scope: list[tuple[str, Any]], bind: bool = True) -> Any:
        value: Any = NO_VALUE
        for i, cmd in enumerate(pipe.cmds):
            value = self._command(cmd, dot, scope, value if i else NO_VALUE, i > 0)
        if bind and pipe.decl:
            scope.append((pipe.decl[-1], value))
        return value

    def _command(self, cmd: list[_Operand], dot: Any, scope: list[tuple[str, Any]],
                 piped: Any, has_piped: bool) -> Any:
        head = cmd[0]
        if head.kind == "ident":
            args = [self._operand(op, dot, scope) for op in cmd[1:]]
            if has_piped:
                args.append(piped)
            text = " ".join(op.text for op in cmd)
            try:
                return FUNCS[head.value](*args)
            except ExecError as exc:
                raise ExecError(self._where(head.pos, text) + str(exc)) from exc
            except (TypeError, ValueError, AttributeError, IndexError) as exc:
                raise ExecError(self._where(head.pos, text)
                                + f"error calling {head.value}: {exc}") from exc
        if len(cmd) > 1 or has_piped:
            raise ExecError(self._where(head.pos, head.text) + f"can't give argument to non-function {head.text}")
        return self._operand(head, dot, scope)

    def _operand(self, op: _Operand, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        if op.kind == "lit":
            return op.value
        if op.kind == "dot":
            return dot
        if op.kind == "ident":
            return FUNCS[op.value]()
        if op.kind == "field":
            return self._chain(dot, op.value, op)
        if op.kind == "pipe":
            return self._chain(self._pipe(op.value, dot, list(scope)), op.chain, op)
        for name, value in reversed(scope):
            if name == op.value:
                return self._chain(value, op.chain, op)
        raise ExecError(f"template: :1: undefined variable: {op.value}")

    def _chain(self, value: Any, names: list[str], op: _Operand) -> Any:
        for name in names:
            if isinstance(value, dict):
                if name in value:
                    value = value[name]
                elif self.missing_key_error:
                    raise ExecError(self._where(op.chain_pos, op.text)
                                    + f'map has no entry for key "{name}"')
                else:
                    value = NO_VALUE
            elif value is None or value is NO_VALUE:
                raise ExecError(self._where(op.chain_pos, op.text)
                                + f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise ExecError(self._where(op.chain_pos, op.text)
                                + f"can't evaluate field {name} in type interface {{}}")
        return value
