"""`dockyard models`: create, list, describe and delete models."""

from __future__ import annotations

import click

from dockyard.cli.job_models import runtime_of_job
from dockyard.cli.options import key_values, runtime_option, runtime_tags
from dockyard.cli.output import local_time, newest_first, print_listing, wire_json
from dockyard.cli.uploads import data_for_server
from dockyard.client import Client
from dockyard.client.uris import image_ref
from dockyard.settings import Settings


@click.group()
def models() -> None:
    """Models: an image and its model data, ready to serve."""


@models.command()
@click.argument("name")
@click.option(
    "--image", help="Image folder (with a Dockerfile), framework image or image reference."
)
@click.option(
    "--model-data",
    help="model.tar.gz: s3://, file:// or a local path (uploaded for a server named by "
    "DOCKYARD_ENDPOINT_URL).",
)
@click.option("--job", help="Take the image and model data from this training job.")
@click.option("--env", "environment", multiple=True, metavar="KEY=VALUE")
@runtime_option
@click.pass_obj
def create(
    settings: Settings,
    name: str,
    image: str | None,
    model_data: str | None,
    job: str | None,
    environment: tuple[str, ...],
    runtime: str | None,
) -> None:
    """CreateModel."""
    client = Client(settings)
    if job:
        described = client.sagemaker.describe_training_job(TrainingJobName=job)
        image = image or described["AlgorithmSpecification"]["TrainingImage"]
        model_data = model_data or described["ModelArtifacts"]["S3ModelArtifacts"]
    if not image:
        raise click.UsageError("give --image, or --job to take the training job's image")
    container: dict[str, object] = {"Image": image_ref(image)}
    if model_data:
        container["ModelDataUrl"] = data_for_server(
            client, model_data, f"{name}/model", "--model-data"
        )
    if environment:
        container["Environment"] = key_values(environment, "--env")
    tags = runtime_of_job(client, job, runtime) if job else runtime_tags(runtime)
    arn = client.sagemaker.create_model(ModelName=name, PrimaryContainer=container, Tags=tags)[
        "ModelArn"
    ]
    click.echo(f"Model {name} created ({arn})")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the ListModels response.")
@click.pass_obj
def list_models(settings: Settings, as_json: bool) -> None:
    """List models, newest first."""
    response = Client(settings).sagemaker.list_models(**newest_first())
    rows = ((model["ModelName"], local_time(model["CreationTime"])) for model in response["Models"])
    print_listing(response, as_json, ("Name", "Created"), rows)


@models.command()
@click.argument("name")
@click.pass_obj
def describe(settings: Settings, name: str) -> None:
    """DescribeModel, as JSON."""
    click.echo(wire_json(Client(settings).sagemaker.describe_model(ModelName=name)))


@models.command()
@click.argument("name")
@click.pass_obj
def delete(settings: Settings, name: str) -> None:
    """DeleteModel."""
    Client(settings).sagemaker.delete_model(ModelName=name)
    click.echo(f"Model {name} deleted")
