"""``progenitor sandbox ...``: make the Docker images, check the backend, sweep leftovers.

A thin shell over ``progenitor.sandbox.docker.images`` and ``DockerSandbox``: it parses, calls and
prints; ``errors.Group`` turns a progenitor error into one line and its exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click

from progenitor.cli.errors import Group


class _BaseImageOption(click.Option):
    """An option whose default is the base image's name (``images.DEFAULT_BASE``), looked up
    only when a command runs or shows its own help: importing the sandbox package (pydantic,
    the Docker backend) at start-up would slow down every ``progenitor`` command."""

    def get_default(self, ctx: click.Context, call: bool = True) -> str:
        from progenitor.sandbox.docker.images import DEFAULT_BASE

        return DEFAULT_BASE


def _logger(quiet: bool) -> Optional[Callable[[str], None]]:
    return None if quiet else (lambda line: click.echo(line, err=True))


@click.group("sandbox", cls=Group)
def sandbox() -> None:
    """Docker images and containers for the docker sandbox backend."""


@sandbox.command("build")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base", cls=_BaseImageOption, show_default=True,
              help="Base image (must exist locally: nothing is pulled).")
@click.option("--wheelhouse", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the gathered wheels here (default: a temporary directory).")
@click.option("--tag", help="Also tag the image with this name (it is always tagged progenitor-task:<hash>).")
@click.option("--download/--no-download", default=True, show_default=True,
              help="Gather wheels on this host with pip; --no-download uses the wheelhouse as it is.")
@click.option("--force", is_flag=True, help="Rebuild even if an image with the same hash exists.")
@click.option("--approve-dependencies", is_flag=True,
              help="You reviewed the dependency manifests a progenitor candidate changed, and approve building from them.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image's tag.")
def build(directory: Path, base: str, wheelhouse: Optional[Path], tag: Optional[str],
          download: bool, force: bool, approve_dependencies: bool, quiet: bool) -> None:
    """Build the task image of the model repo DIR: base image + its requirements.txt, offline.

    A manifest (requirements*.txt, pyproject.toml, setup.py, lock files...) that a progenitor
    candidate changed last is refused unless --approve-dependencies says a person approved it."""
    from progenitor.sandbox.docker.images import build_task_image

    name = build_task_image(directory, base=base, wheelhouse=wheelhouse, tag=tag, download=download,
                            force=force, log=_logger(quiet), approve_dependencies=approve_dependencies)
    click.echo(name)


@sandbox.command("base")
@click.option("--tag", cls=_BaseImageOption, show_default=True, help="Name of the base image to make.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite given to debootstrap.")
@click.option("--mirror", help="Debian mirror URL (default: debootstrap's).")
@click.option("--force", is_flag=True, help="Make it again even if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image's tag.")
def base(tag: str, suite: str, mirror: Optional[str], force: bool, quiet: bool) -> None:
    """Make the base image locally: debootstrap a minimal Debian with Python, docker import it (needs root)."""
    from progenitor.sandbox.docker.images import make_base_image

    click.echo(make_base_image(tag=tag, suite=suite, mirror=mirror, force=force, log=_logger(quiet)))


@sandbox.command("check")
@click.option("--image", help="Image to look for (default: the base image).")
def check(image: Optional[str]) -> None:
    """Say in one line whether Docker answers, the image exists and GPUs are supported."""
    from progenitor.sandbox.docker import DockerSandbox

    result = DockerSandbox(image=image).check()
    click.echo(f"docker: {'ok' if result.available else 'unavailable'} - {result.detail}")
    if not result.available:
        raise click.exceptions.Exit(1)


@sandbox.command("sweep")
@click.option("--run", "run_id", help="Only the containers of this run.")
def sweep(run_id: Optional[str]) -> None:
    """Remove progenitor's leftover containers (of every run, unless --run is given)."""
    from progenitor.sandbox.docker import DockerSandbox

    count = DockerSandbox().sweep(run=run_id)
    click.echo(f"removed {count} container{'s' if count != 1 else ''}")
