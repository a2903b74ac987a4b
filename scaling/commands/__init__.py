"""Every subcommand of the ``scaling`` command line, one module each (``add_arguments(parser)`` and
``run(args) -> int``; :mod:`scaling.cli` lists them). Commands turn flags into settings and talk to
the library: ``launch``, ``status`` and ``cancel`` only through the executor protocol."""
