"""`python -m gateway.cli`: the same command line as `energy-gateway`."""

from gateway.cli import main

if __name__ == "__main__":  # importing this module (a doc tool, a test collector) must not run the command line
    main()
