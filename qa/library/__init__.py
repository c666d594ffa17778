"""The document library: add, replace and remove papers in a built index without a rebuild from scratch.

- ``vectors``: the on-disk vector cache, keyed by model weights hash and text;
- ``uploads``: untrusted file names and uploads, staged and parsed before they touch the corpus;
- ``journal``: the commit of a change (corpus files and the ``current`` pointer) and its recovery after a kill;
- ``incremental``: the next build from the current one, embedding only new or changed text;
- ``changes``: the operations (add, replace, remove) the CLI and the API call.
"""
