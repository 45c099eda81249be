"""Every command of the tree answers `--help`."""

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from billplane.cli import app as cli


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "commands"):  # a group (Typer's own click, not `click.Group`)
        for name, sub in sorted(command.commands.items()):
            yield from _command_paths(sub, (*path, name))


COMMAND_PATHS = list(_command_paths(typer.main.get_command(cli)))


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "billplane")
def test_every_commands_help_works(path: tuple[str, ...]) -> None:
    """`--help` of every command in the tree answers its usage (a help string is Rich markup:
    one stray `[/...]` in it used to crash `plan create --help`)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(COMMAND_PATHS) > 10  # the tree was walked, not just its root
