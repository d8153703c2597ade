"""What makes untrusted content inert: safe answer Markdown, the stored answer's HTML, the
shapes of ids read from notebooks."""
