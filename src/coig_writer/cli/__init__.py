"""`coig-writer` command line: one command group per stage."""

import typer

from .construct import construct_app
from .data import data_app
from .evaluate import eval_app
from .experiment import experiment_app
from .mix import mix_app, train_app
from .models import models_app, prompts_app
from .review import review_app

app = typer.Typer(help="Build, review, mix and evaluate process-supervised creative-writing data.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
for sub, name in ((construct_app, "construct"), (data_app, "data"), (review_app, "review"),
                  (mix_app, "mix"), (train_app, "train"), (eval_app, "eval"),
                  (models_app, "models"), (prompts_app, "prompts"),
                  (experiment_app, "experiment")):
    app.add_typer(sub, name=name)

__all__ = ["app"]
