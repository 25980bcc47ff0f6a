"""`dockyard console`: the web console of the dockyard server (the local one is started if
needed), opened in a browser, with which access key to sign in."""

from __future__ import annotations

import webbrowser

import click

from dockyard.client import Client
from dockyard.settings import Settings


@click.command()
@click.option("--no-browser", is_flag=True, help="Print the address only; open no browser.")
@click.option(
    "--show-secret",
    is_flag=True,
    help="Also print the secret access key (not where others can read it).",
)
@click.pass_obj
def console(settings: Settings, no_browser: bool, show_secret: bool) -> None:
    """Open the web console: jobs, logs, metrics and endpoints in a browser.

    Prints its address and the access key id to sign in with; the secret access key is
    printed only with --show-secret (by default, where it is kept)."""
    client = Client(settings)
    url = f"{client.endpoint_url}/console/"
    key = client.access_key
    click.echo(f"dockyard console: {url}")
    click.echo(f"Sign in with access key id {key.access_key_id}")
    if show_secret:
        click.echo(f"and secret access key {key.secret_access_key}")
    else:
        click.echo(
            f"and its secret access key, {client.secret_location} "
            "(or: dockyard console --show-secret)"
        )
    if no_browser:
        return
    try:
        opened = webbrowser.get().open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        click.echo("No browser could be opened here: open the address above in one.")
