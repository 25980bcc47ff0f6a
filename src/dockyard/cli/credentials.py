"""`dockyard credentials`: the key pair and address for boto3, the aws CLI and the SageMaker SDK,
as shell variables or as an AWS profile."""

from __future__ import annotations

import shlex

import click

from dockyard.client import Client
from dockyard.settings import Settings


@click.command()
@click.option(
    "--shell",
    "form",
    flag_value="shell",
    default=True,
    help='`export AWS_...=...` lines, for eval "$(dockyard credentials)" (the default).',
)
@click.option(
    "--profile",
    "form",
    flag_value="profile",
    help="A profile for ~/.aws/config and ~/.aws/credentials (use it with AWS_PROFILE).",
)
@click.option("--profile-name", default="dockyard", show_default=True, help="The profile's name.")
@click.pass_obj
def credentials(settings: Settings, form: str, profile_name: str) -> None:
    """Print the keys and address of the dockyard server (the local one is started if needed).

    The output holds a secret: do not paste it where others can read it."""
    client = Client(settings)
    url = client.endpoint_url
    key = client.access_key
    if form == "profile":
        click.echo(
            f"# Add to ~/.aws/config:\n"
            f"[profile {profile_name}]\n"
            f"region = {settings.region}\n"
            f"endpoint_url = {url}\n"
            f"\n"
            f"# Add to ~/.aws/credentials:\n"
            f"[{profile_name}]\n"
            f"aws_access_key_id = {key.access_key_id}\n"
            f"aws_secret_access_key = {key.secret_access_key}\n"
            f"\n"
            f"# Then: export AWS_PROFILE={profile_name}  (or --profile {profile_name}, "
            f"boto3.Session(profile_name={profile_name!r}))"
        )
        return
    values = {
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ENDPOINT_URL": url,
    }
    for name, value in values.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo("# As an AWS profile instead: dockyard credentials --profile")
