"""`python -m envdoctor`: the same as the envdoctor command."""

from envdoctor._cli import run

run()
