"""Upstream: the outbox relayed to the central system (MQTT, HTTP), and its commands down."""
