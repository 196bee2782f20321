"""CLI sub-commands; each module parses options and calls the library, nothing more."""
