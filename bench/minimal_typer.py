"""The start-up baseline: a typer app with two commands and nothing else (workload e)."""

import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(f"Hello {name}")


@app.command()
def bye(name: str) -> None:
    """Say goodbye."""
    print(f"Bye {name}")


if __name__ == "__main__":
    app()
