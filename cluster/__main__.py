"""``python -m cluster``: the cluster's command line (see :mod:`cluster.cli`)."""

from cluster.cli import main

main()
