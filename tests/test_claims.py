"""A claim's check fails, naming the claim and the evidence, exactly when the evidence stops supporting it."""
import pytest

from aml.decisions import ClaimNotSupported, check_claim


def test_a_supported_claim_passes_silently(capsys):
    check_claim("depth helps", True, "0.60 vs 0.55")
    assert capsys.readouterr().out == ""


def test_an_unsupported_claim_fails_naming_claim_and_evidence():
    with pytest.raises(ClaimNotSupported, match=r"claims: 'depth helps'.*\(0.55 vs 0.60\)"):
        check_claim("depth helps", False, "0.55 vs 0.60")


def test_a_small_budget_run_does_not_enforce_claims():
    check_claim("depth helps", False, "smoke", enforce=False)


def test_a_claim_must_be_a_sentence():
    with pytest.raises(ValueError, match="'claim' parameter"):
        check_claim("  ", True, "")
