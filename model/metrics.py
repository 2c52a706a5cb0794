"""Scores for the evaluation tasks: answer matching, multiple choice, chrF, centred accuracy.

Plain Python (no torch): the task harness in ``model.tasks`` and the tests share these.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, drop punctuation and articles, collapse whitespace.

    Text that is nothing but punctuation (a Dyck-language answer such as "} ]") would
    normalise to nothing and match any other such text, so it keeps its punctuation and only
    has its whitespace collapsed.
    """
    lowered = text.lower()
    words = _ARTICLES.sub(" ", "".join(ch for ch in lowered if ch not in _PUNCTUATION)).split()
    return " ".join(words) if words else " ".join(lowered.split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference, else 0.0."""
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(ref) for ref in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 over normalised words, the best over the references.

    Two empty answers agree (1.0); an empty answer against a non-empty one scores 0.0.
    """
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for reference in references:
        expected = normalize_answer(reference).split()
        if not predicted or not expected:
            best = max(best, float(predicted == expected))
            continue
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def choose(scores: Sequence[float]) -> int:
    """Index of the highest score; the first one on ties, so results are deterministic."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def multiple_choice_predictions(
    loglikelihoods: Sequence[float],
    continuation_bytes: Sequence[int],
    continuation_tokens: Sequence[int],
) -> dict[str, int]:
    """The choice picked by each rule, for one item.

    * ``acc``: highest summed log-likelihood of the continuation;
    * ``acc_norm``: highest log-likelihood per UTF-8 byte of the continuation, which removes
      the bias towards short answers (lm-evaluation-harness's acc_norm; it divides by
      ``len(str)``, equal to the byte length for ASCII text);
    * ``acc_per_token``: highest mean log-likelihood per continuation token, the rule of
      Mosaic's ICL multiple-choice accuracy and of the DCLM/nanochat CORE score.
    """
    return {
        "acc": choose(loglikelihoods),
        "acc_norm": choose(
            [ll / max(n, 1) for ll, n in zip(loglikelihoods, continuation_bytes, strict=True)]
        ),
        "acc_per_token": choose(
            [ll / max(n, 1) for ll, n in zip(loglikelihoods, continuation_tokens, strict=True)]
        ),
    }


def centered_accuracy(accuracy: float, random_baseline_percent: float) -> float:
    """CORE's centred score: 0 at chance, 1 at perfect; the baseline is a percentage."""
    baseline = random_baseline_percent / 100.0
    if baseline >= 1.0:
        raise ValueError(f"random baseline {random_baseline_percent}% leaves nothing to score")
    return (accuracy - baseline) / (1.0 - baseline)


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Total negative log-likelihood in nats turned into bits per UTF-8 byte of text."""
    return nll_nats / math.log(2) / n_bytes if n_bytes else math.nan


def _char_ngrams(text: str, n: int) -> Counter[str]:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def _word_ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _chrf_words(text: str) -> list[str]:
    """chrF++'s word split: whitespace, then one trailing or leading punctuation mark apart."""
    words = []
    for word in text.split():
        if len(word) > 1 and word[-1] in _PUNCTUATION:
            words += [word[:-1], word[-1]]
        elif len(word) > 1 and word[0] in _PUNCTUATION:
            words += [word[0], word[1:]]
        else:
            words.append(word)
    return words


def chrf(
    hypotheses: Sequence[str],
    references: Sequence[str],
    char_order: int = 6,
    word_order: int = 0,
    beta: float = 2.0,
) -> float:
    """Corpus-level chrF (Popović 2015) on a 0-100 scale, as sacreBLEU computes it.

    Character n-grams (n = 1..char_order) ignore whitespace; with word_order > 0 word n-grams
    are added (chrF++). Matches and counts are summed over the corpus per n-gram order;
    precision and recall are averaged over the orders, then combined into one F-beta score.
    Hand-written because the definition is short and exact, which spares the runtime a
    dependency (sacreBLEU pulls in portalocker, tabulate, colorama, regex); the tests check
    it against sacreBLEU.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    orders = char_order + word_order
    matched = [0] * orders
    hyp_total = [0] * orders
    ref_total = [0] * orders
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hyp_chars, ref_chars = "".join(hypothesis.split()), "".join(reference.split())
        hyp_words, ref_words = _chrf_words(hypothesis), _chrf_words(reference)
        for k in range(orders):
            if k < char_order:
                hyp_grams, ref_grams = (
                    _char_ngrams(hyp_chars, k + 1),
                    _char_ngrams(ref_chars, k + 1),
                )
            else:
                n = k - char_order + 1
                hyp_grams, ref_grams = _word_ngrams(hyp_words, n), _word_ngrams(ref_words, n)
            matched[k] += sum((hyp_grams & ref_grams).values())
            hyp_total[k] += sum(hyp_grams.values())
            ref_total[k] += sum(ref_grams.values())
    # sacreBLEU 2's default: precision and recall averaged over the orders where both sides
    # have n-grams, then one F-beta of the averages.
    effective = [k for k in range(orders) if hyp_total[k] and ref_total[k]]
    if not effective:
        return 0.0
    precision = sum(matched[k] / hyp_total[k] for k in effective) / len(effective)
    recall = sum(matched[k] / ref_total[k] for k in effective) / len(effective)
    if not precision + recall:
        return 0.0
    beta2 = beta**2
    return 100.0 * (1 + beta2) * precision * recall / (beta2 * precision + recall)
