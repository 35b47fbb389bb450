"""``progenitor prompts ...``: the LLM agents' packaged prompt templates."""

from __future__ import annotations

import click

from progenitor.cli.errors import Group


@click.group(cls=Group)
def prompts() -> None:
    """The prompt templates of the LLM agents (one per role, Jinja2, rendered strictly)."""


@prompts.command("show")
@click.argument("role")
def show(role: str) -> None:
    """Print ROLE's template file (architect, coder or reviewer)."""
    from progenitor.agents import prompts as templates

    click.echo(templates.source(role), nl=False)


@prompts.command("list")
def list_roles() -> None:
    """The roles that have a prompt."""
    from progenitor.agents import prompts as templates

    for role in templates.ROLES:
        click.echo(role)
