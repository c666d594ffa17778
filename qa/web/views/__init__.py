"""One module per page; each calls the same library functions as its JSON twin."""
