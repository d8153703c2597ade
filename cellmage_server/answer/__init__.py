"""One answer's lifecycle, called by every endpoint: its plan, relay, outputs, the board of
running answers, its ending and its price."""
