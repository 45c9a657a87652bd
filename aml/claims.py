"""The check that follows each claim of the report: a sentence in a Markdown cell is followed by a
code cell that calls :func:`check_claim` with the evidence, so a run whose numbers stop supporting
the sentence fails, naming it, instead of printing a report that says something false."""
from __future__ import annotations


class ClaimNotSupported(AssertionError):
    """A claim of the report is not supported by this run's results."""


def check_claim(claim: str, holds: bool, evidence: str, *, enforce: bool = True) -> None:
    """Raise :class:`ClaimNotSupported` naming ``claim`` and ``evidence`` unless ``holds``.

    Parameters
    ----------
    claim : str
        The sentence of the report, as a reader finds it in the Markdown cell above.
    holds : bool
        Whether this run's results support it (computed with the rules of :mod:`aml.decisions`).
    evidence : str
        The figures the judgement rests on, for the message.
    enforce : bool
        False on a small (smoke) budget, where the full run's claims need not hold.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"The 'claim' parameter must be the claim's sentence. Got {claim!r} instead.")
    if enforce and not bool(holds):
        raise ClaimNotSupported(f"The report claims: {claim!r}, but this run does not support it ({evidence}). "
                                f"Rewrite the claim or find out why the evidence changed.")
