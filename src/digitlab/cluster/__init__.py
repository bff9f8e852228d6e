"""Running digitlab's work on a Ray cluster (the optional extra: pip install 'digitlab[ray]').

Ray is imported only here, and only when a command is given `--cluster`.
"""
