from __future__ import annotations

import math

import pytest

from model.metrics import (
    bits_per_byte,
    centered_accuracy,
    choose,
    chrf,
    exact_match,
    multiple_choice_predictions,
    normalize_answer,
    token_f1,
)


def test_normalize_answer_follows_squad() -> None:
    assert normalize_answer("  The Tower of   London! ") == "tower of london"
    assert normalize_answer("An apple, a day.") == "apple day"
    # punctuation-only answers keep their punctuation rather than collapsing to ""
    assert normalize_answer(" } ]  ") == "} ]"


def test_exact_match_on_known_strings() -> None:
    assert exact_match("the Tower of London.", ["Tower of London"]) == 1.0
    assert exact_match("Tower Bridge", ["Tower of London", "tower bridge"]) == 1.0
    assert exact_match("London", ["Tower of London"]) == 0.0
    assert exact_match("} ]", ["} ]"]) == 1.0
    assert exact_match(") ]", ["} ]"]) == 0.0


def test_token_f1_on_known_strings() -> None:
    # prediction {admiral, byrd}, reference {admiral, richard, byrd}: P = 1, R = 2/3
    assert token_f1("Admiral Byrd", ["Admiral Richard Byrd"]) == pytest.approx(0.8)
    # one of three predicted words right, one of one: P = 1/3, R = 1 -> F1 = 0.5
    assert token_f1("the big red dog", ["a dog"]) == pytest.approx(0.5)
    assert token_f1("cat", ["dog"]) == 0.0
    assert token_f1("", [""]) == 1.0
    assert token_f1("", ["dog"]) == 0.0
    # the best reference counts; repeated words count only as often as they appear
    assert token_f1("dog dog", ["cat", "dog"]) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_choose_breaks_ties_by_the_first() -> None:
    assert choose([-3.0, -1.0, -1.0]) == 1
    assert choose([0.0]) == 0


def test_multiple_choice_rules_differ_as_designed() -> None:
    # choice 0: -4 over 2 bytes (-2/byte), 4 tokens (-1/token);
    # choice 1: -3 over 1 byte (-3/byte), 1 token (-3/token)
    picks = multiple_choice_predictions([-4.0, -3.0], [2, 1], [4, 1])
    assert picks == {"acc": 1, "acc_norm": 0, "acc_per_token": 0}


def test_centered_accuracy() -> None:
    assert centered_accuracy(0.25, 25) == 0.0
    assert centered_accuracy(1.0, 25) == 1.0
    assert centered_accuracy(0.625, 25) == pytest.approx(0.5)
    assert centered_accuracy(0.4, 50) == pytest.approx(-0.2)
    assert centered_accuracy(0.3, 0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        centered_accuracy(0.5, 100)


def test_bits_per_byte_of_a_uniform_byte_model_is_eight() -> None:
    n_bytes = 1000
    nll = n_bytes * math.log(256)  # every byte has probability 1/256
    assert bits_per_byte(nll, n_bytes) == pytest.approx(8.0)
    assert math.isnan(bits_per_byte(1.0, 0))


def test_chrf_hand_computed() -> None:
    assert chrf(["abc"], ["abc"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"]) == 0.0
    # hyp "ab", ref "abc", char_order 2: unigrams P = 2/2, R = 2/3; bigrams P = 1/1, R = 1/2.
    # averaged P = 1, R = 7/12; F2 = 5 * P * R / (4 * P + R)
    precision, recall = 1.0, 7 / 12
    expected = 100 * 5 * precision * recall / (4 * precision + recall)
    assert chrf(["ab"], ["abc"], char_order=2) == pytest.approx(expected)
    # whitespace is ignored
    assert chrf(["a b c"], ["abc"]) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        chrf(["a"], [])


def test_chrf_agrees_with_sacrebleu(evals_dir) -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    folder = evals_dir / "translation_ted_sk_en"
    references = (folder / "ted.ref.detok.eng").read_text(encoding="utf-8").splitlines()[:40]
    # hypotheses: the Moses-tokenized references of the next lines, partly wrong on purpose
    tokenized = (folder / "ted.ref.eng").read_text(encoding="utf-8").splitlines()
    hypotheses = [tokenized[i] if i % 3 else tokenized[i + 1] for i in range(40)]
    for word_order in (0, 2):
        expected = sacrebleu.CHRF(word_order=word_order).corpus_score(hypotheses, [references])
        assert chrf(hypotheses, references, word_order=word_order) == pytest.approx(
            expected.score, abs=1e-9
        )
