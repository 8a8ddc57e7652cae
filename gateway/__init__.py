"""carpark-gateway: the edge daemon that runs one car park."""

__version__ = "0.1.0"
