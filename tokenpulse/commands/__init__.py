"""The `tokenpulse` commands, one module per area; tokenpulse/cli.py builds the parser from
their `register(sub)` functions. A command's body parses, calls one module and prints."""
