"""`python -m nbflask` is the `nbflask` command."""

from .cli import main

main()
