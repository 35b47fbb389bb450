"""The CLI's error discipline, shared by every command group: a ``ProgenitorError`` leaves
as its sentence on stderr (a spec's problems one per line) with the error's exit code (2 for bad
input), never a traceback."""

from __future__ import annotations

import click

from progenitor.boundary.display import shown
from progenitor.errors import ProgenitorError


class CommandError(click.ClickException):
    def __init__(self, message: str, exit_code: int, details: str = ""):
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details

    def show(self, file=None) -> None:
        # A message may quote what a command or a candidate printed: its control characters are shown,
        # not obeyed (its own line breaks kept: a spec's problems are listed one per line).
        click.echo(f"error: {shown(self.message, multiline=True)}", err=True)
        for line in self.details.splitlines():
            click.echo(f"  | {shown(line)}", err=True)


class Group(click.Group):
    """A click group whose commands turn progenitor's errors into ``CommandError``."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProgenitorError as exc:
            raise CommandError(str(exc), exc.exit_code, getattr(exc, "details", "")) from None
