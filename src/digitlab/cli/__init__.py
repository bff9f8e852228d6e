"""The `digitlab` command: one thin command per verb, options declared once, console output."""
