"""PII masking of document text: e-mail addresses and public IP addresses, as FineWeb does.

datatrove's ``PIIFormatter`` holds the patterns (an RFC 5322-style e-mail regex; dotted-quad IPv4
kept only when ``ipaddress`` calls it global, so version numbers such as 10.0.0.1 and private
addresses stay) and the fixed replacement values. ``PiiMasker`` is that formatter plus a count of
what it replaced, per document and per run, so the masking shows up in the asset's metadata.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.formatters.pii import PIIReplacer
from datatrove.utils.typeshelper import StatHints


def _count_masked(replacer: PIIReplacer, text: str) -> int:
    """Matches of ``replacer`` in ``text`` that its validator accepts (those it replaces)."""
    validator = replacer.validator
    return sum(
        1 for match in replacer.regex.finditer(text) if validator is None or validator(match[0])
    )


class PiiMasker(PIIFormatter):
    """Replace e-mail addresses and public IPv4 addresses in ``doc.text``.

    Sets ``pii_masked`` = ``{"emails": n, "ips": m}`` in the metadata of a document where
    something was replaced, and counts ``emails_masked`` / ``ips_masked`` in the step's stats.
    """

    name = "pii"

    def mask(self, text: str) -> tuple[str, dict[str, int]]:
        """``text`` with its PII replaced, and how many of each kind were replaced."""
        masked: dict[str, int] = {}
        for kind, enabled, replacer in (
            ("emails", self.remove_emails, self.emails_replacer),
            ("ips", self.remove_ips, self.ip_replacer),
        ):
            if not enabled:
                continue
            # Counting scans the text a second time, so only texts that changed are counted.
            replaced = replacer.replace(text)
            if replaced != text:
                masked[kind] = _count_masked(replacer, text)
                text = replaced
        return text, masked

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                doc.text, masked = self.mask(doc.text)
            if masked:
                doc.metadata["pii_masked"] = masked
                for kind, count in masked.items():
                    self.stat_update(f"{kind}_masked", value=count)
            yield doc
