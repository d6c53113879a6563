"""``python -m rnnkit``: the command line (also what ``torchrun -m rnnkit train ...`` runs)."""

from .cli import app

if __name__ == "__main__":
    app()
