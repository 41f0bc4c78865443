"""``python -m mlrig.cli``: the ``mlrig`` command (how ``mlrig demo --workers`` starts its workers)."""

from mlrig.cli.commands import main

main()
