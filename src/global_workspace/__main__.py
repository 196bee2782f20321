"""`python -m global_workspace` runs the `gw` command (handy on machines without the console script)."""

from .cli import main

if __name__ == "__main__":  # not when a worker process (gw demo) re-imports the main module
    main()
