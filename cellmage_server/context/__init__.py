"""What the user points at: cells above the prompt, the last error, kernel variables, snippet
files. Explicit (the user's flags say what goes), visible (``start`` reports what went), bounded
(``limits.context_chars`` and each kind's cap in ``[context]``, trimmed the documented way) and
governed (``[context] allowed``). notebook.py and assemble.py are pure; gather.py reads the
notebook and the snippet files."""
