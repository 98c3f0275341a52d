"""`python -m retrain.cli`: the `retrain` command."""

from retrain.cli import app

if __name__ == "__main__":
    app()
