"""memberflow: an audited workflow engine for the Party membership lifecycle.

The repository root is this package (see ``package-dir`` in pyproject.toml), so the source
folders the design names (``workflow/``, ``storage/``, ``app/``, ``commands/``) install as
``memberflow.workflow``, ``memberflow.storage`` and so on, and nothing bare lands in
site-packages.
"""
