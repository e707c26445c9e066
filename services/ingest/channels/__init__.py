"""Channel adapters: turn each channel's own webhook payload into inbound messages."""
