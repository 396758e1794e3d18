"""One module per ``soundscape-engine`` sub-command (``add_arguments`` and ``run``)."""
