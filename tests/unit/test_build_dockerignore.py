"""`.dockerignore` rules, checked against moby/patternmatcher's documented behaviour."""
from tether.rules.dockerignore import compile_pattern, excluded, parse


def test_comments_blank_lines_and_cleaning() -> None:
    patterns = parse("# a comment\n\n  *.log  \n/secret.txt\n./docs/../tmp\n")
    assert [p.text for p in patterns] == ["*.log", "secret.txt", "tmp"]


def test_star_does_not_cross_directories_but_parent_match_excludes_children() -> None:
    patterns = parse("*.log\nbuild\n")
    assert excluded("a.log", patterns)
    assert not excluded("sub/a.log", patterns)
    assert excluded("build", patterns)
    assert excluded("build/out/x.o", patterns)  # a parent directory matches
    assert not excluded("builder", patterns)


def test_double_star_matches_any_depth() -> None:
    patterns = parse("**/*.pyc\n")
    assert excluded("a.pyc", patterns)
    assert excluded("x/y/z.pyc", patterns)
    assert not excluded("x/y/z.py", patterns)


def test_exclusions_reinclude_and_later_patterns_win() -> None:
    patterns = parse("*.md\n!README.md\n")
    assert excluded("CHANGES.md", patterns)
    assert not excluded("README.md", patterns)
    patterns = parse("!README.md\n*.md\n")
    assert excluded("README.md", patterns)


def test_question_mark_and_escaped_regex_characters() -> None:
    assert compile_pattern("a?c").match("abc")
    assert not compile_pattern("a?c").match("a/c")
    assert compile_pattern("v1.0+(x)").match("v1.0+(x)")
    assert not compile_pattern("v1.0").match("v1x0")
