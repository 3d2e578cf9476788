"""`envdoctor lint`: find (and with --fix rewrite) keywords that the installed or pinned libraries renamed."""
