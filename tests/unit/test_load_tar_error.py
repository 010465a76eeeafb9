"""A `load` body that is no tar: the error dockerd's Go tar reader gives, from tarfile's reasons."""
from tether.rules.errors import load_tar_error


def test_load_tar_error_as_go_reads_it():
    assert load_tar_error("- method tar: ReadError('truncated header')").endswith(": unexpected EOF")
    assert load_tar_error("- method tar: ReadError('invalid header')").endswith(
        "archive/tar: invalid tar header")
    assert load_tar_error("- method tar: ReadError('empty file')") == (
        "open <host path>/repositories: no such file or directory")
