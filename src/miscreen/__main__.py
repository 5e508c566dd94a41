"""``python -m miscreen``: the ``miscreen`` command."""

from miscreen.cli import app

if __name__ == "__main__":
    app(prog_name="miscreen")
