"""`python -m global_workspace` runs the `gw` command (handy on machines without the console script)."""

from .cli import main

main()
