"""Switchboard's shared library: the event contract and the Kafka plumbing, no business logic."""

__version__ = "0.1.0"
