"""``python -m perceptiq`` runs the command line."""

from perceptiq.cli import main

raise SystemExit(main())
