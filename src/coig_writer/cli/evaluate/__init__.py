"""`eval`: prompt sets and imports (`sets`), generation (`generate`), judging and estimates
(`judge`, over the shared job helpers in `jobs`), and the report (`report`)."""

import typer

eval_app = typer.Typer(help="Generate, judge, and report win rates and diversity.",
                       no_args_is_help=True)

from . import generate, judge, report, sets  # noqa: E402,F401  (register their commands)
from .judge import judge_plan  # noqa: E402

__all__ = ["eval_app", "judge_plan"]
