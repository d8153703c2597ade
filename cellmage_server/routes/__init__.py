"""The HTTP routes: thin tornado handlers, one module per wire format."""
