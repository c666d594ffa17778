"""Each document's body and caption sentences, split once, and their vocabulary mentions, found again only
when the vocabulary has since learned a name the sentence could hold.

Building facts reads every sentence three times (two learning passes, then extraction with what was
learned). Each time it needs the sentence's mentions, and the vocabulary has usually learned nothing the
sentence contains since it was last scanned: a name matches in a sentence only where the sentence's
comparison key (``norm_key``: lower case, no spaces or dashes) contains the name's key, less its last
letter (plural and '-y'/'-ies' endings). So a scan is kept with the vocabulary's name count at the time,
and used again while no name added since could be in the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.documents import Document
from qa.facts.vocab import Mention, Vocabulary, norm_key
from qa.sentences import split_sentences


@dataclass
class Scan:
    start: int
    end: int
    kind: str  # body | caption
    block: int
    mentions: list[Mention] | None = None
    names_seen: int = -1  # the vocabulary's name count when ``mentions`` were found
    key: str = ""  # norm_key of the sentence, made when first needed


class Scans:
    """The sentence scans of a corpus against one (growing) vocabulary."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._docs: dict[str, list[Scan]] = {}

    def sentences(self, doc: Document) -> list[Scan]:
        """``doc``'s body and caption sentences in order (split on first use)."""
        found = self._docs.get(doc.id)
        if found is None:
            found = self._docs[doc.id] = [
                Scan(s, e, block.kind, i)
                for i, block in enumerate(doc.blocks)
                if block.kind in ("body", "caption")
                for s, e in split_sentences(doc.text, block.start, block.end)
            ]
        return found

    def current(self, doc: Document, scan: Scan) -> bool:
        """Whether ``scan``'s mentions are still what the vocabulary finds in it (no name learned since its
        scan could occur in it)."""
        added = self.vocab.names_added
        if scan.mentions is None:
            return False
        if scan.names_seen == len(added):
            return True
        if not scan.key:
            scan.key = norm_key(doc.text[scan.start : scan.end])
        if any(needle in scan.key for needle in added[scan.names_seen :]):
            return False
        scan.names_seen = len(added)
        return True

    def mentions(self, doc: Document, scan: Scan) -> list[Mention]:
        """The vocabulary's mentions in the sentence, as it stands now."""
        if not self.current(doc, scan):
            scan.names_seen = len(self.vocab.names_added)
            scan.mentions = self.vocab.find(doc.text, scan.start, scan.end)
        assert scan.mentions is not None
        return scan.mentions
