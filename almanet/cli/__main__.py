"""``python -m almanet.cli``: the same as the ``almanet`` command."""

from . import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
