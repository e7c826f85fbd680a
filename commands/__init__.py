"""The command line, one module per group of commands.

Each command parses its options, resolves the acting principal, calls one operation of the
application layer (``memberflow.app``) and renders what it returns.
"""
