"""`cityhealth registry …` (being built)."""

import typer

app = typer.Typer(help="The registry: areas, organizations, client apps, residents.", no_args_is_help=True)
