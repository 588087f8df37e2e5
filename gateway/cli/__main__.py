"""`python -m gateway.cli`: the same command line as `energy-gateway`."""

from gateway.cli import main

main()
