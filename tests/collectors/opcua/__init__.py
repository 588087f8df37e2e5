"""OPC UA collector tests against real asyncua servers on loopback."""
