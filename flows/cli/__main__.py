"""``python -m flows.cli``: the same as the ``ldflow`` console script."""

from flows.cli import main

main()
