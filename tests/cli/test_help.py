"""Every command of the tree answers `--help`, and every one that prints data takes `--json`."""

import re
from collections.abc import Iterator
from pathlib import Path
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


# What prints no object of billplane's: the server, the sender of app webhooks and a
# migration's one line.
PRINTS_NO_DATA = {("serve",), ("worker",), ("db", "upgrade")}


def _leaves() -> Iterator[tuple[tuple[str, ...], Any]]:
    tree = typer.main.get_command(cli)
    for path in COMMAND_PATHS:
        command = tree
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        if not hasattr(command, "commands"):
            yield path, command


@pytest.mark.parametrize(
    ("path", "command"),
    [
        pytest.param(*leaf, id=" ".join(leaf[0]))
        for leaf in _leaves()
        if leaf[0] not in PRINTS_NO_DATA
    ],
)
def test_every_command_that_prints_data_takes_json(path: tuple[str, ...], command: Any) -> None:
    options = {opt for param in command.params for opt in param.opts}

    assert "--json" in options, f"billplane {' '.join(path)} has no --json"


def test_every_command_the_readme_shows_exists() -> None:
    """The README's `billplane …` examples name commands of this tree."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = re.findall(r"`billplane ([a-z][a-z ]*[a-z])", readme.replace("\n", " "))
    leaves = {" ".join(path) for path, _ in _leaves()}

    assert len(shown) > 10
    for words in shown:
        first = words.split()
        assert " ".join(first[:1]) in leaves or " ".join(first[:2]) in leaves, words
