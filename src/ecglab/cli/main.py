"""The `ecglab` command: parse arguments, call the library, nothing more."""

import typer

from ecglab.cli.data import app as data_app
from ecglab.cli.explain import explain
from ecglab.cli.infer import example, export, predict
from ecglab.cli.models import models
from ecglab.cli.pretrain import pretrain
from ecglab.cli.serve import serve
from ecglab.cli.train import bench, distill, evaluate, train

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Deep-learning ECG arrhythmia classification."
)
app.add_typer(data_app, name="data")
app.command("models")(models)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("bench")(bench)
app.command("pretrain")(pretrain)
app.command("distill")(distill)
app.command("predict")(predict)
app.command("export")(export)
app.command("explain")(explain)
app.command("example")(example)
app.command("serve")(serve)

if __name__ == "__main__":
    app()
