"""``python -m racam``: the ``racam`` command (also under ``torchrun ... -m racam``)."""

from racam.cli import main

if __name__ == "__main__":
    main()
