"""Query and passage embeddings: the model, its forward passes, model processes and the query batcher.

- ``model``: the model (``Embedder``) and its weights hash;
- ``forward``: the forward passes (direct, and packed for a batch);
- ``worker``: the model process's main loop and its client (``ProcessEncoder``);
- ``cache``: the LRU of query vectors;
- ``batcher``: ``QueryBatcher``, whose ``await encode(text)`` embeds a question on the event loop;
- ``tuning``: process-wide tuning, applied by ``qa serve`` only.
"""

from qa.encoding.model import MODEL_MAX_TOKENS, Embedder, resolve_model, weights_hash

__all__ = ["MODEL_MAX_TOKENS", "Embedder", "resolve_model", "weights_hash"]
