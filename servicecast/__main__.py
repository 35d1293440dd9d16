"""`python -m servicecast`."""

from servicecast.cli import app

app(prog_name="servicecast")
