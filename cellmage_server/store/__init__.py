"""What the server keeps: conversations and the usage ledger."""
