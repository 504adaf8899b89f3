"""``python -m qrun`` is the ``qrun`` command."""

from .cli import main

main()
