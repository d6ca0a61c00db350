"""Sentence splitting (text_processing, ai_summarization): the same sentences as the one regex that
defined them before, on random texts of the characters that matter, in time linear in the text."""

import random
import re

import pytest

from app.tasks.builtin.text_processing import count_paragraphs, split_sentences, words

# the definition as one regex: quadratic on a long run of punctuation, so only a reference here
REFERENCE = re.compile(r"\S.*?(?:[.!?]+[\"'”’)\]]*(?=\s|\Z)|(?=\n[ \t\r\f\v]*\n)|\Z)", re.S)
WORD = re.compile(r"[^\W_]")


def reference(text: str) -> list[str]:
    return [match.group() for match in REFERENCE.finditer(text) if WORD.search(match.group())]


def test_the_sentences_are_those_of_the_reference_definition() -> None:
    rng = random.Random(19)
    alphabet = "ab .!?\"')”’]\n\t\u2003"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert split_sentences(text) == reference(text), repr(text)


def test_ordinary_text() -> None:
    text = 'He said "stop!" Then left... Did he?\n\nYes. e.g. 3.14 is pi (roughly.) End'
    assert split_sentences(text) == reference(text) == [
        'He said "stop!"', "Then left...", "Did he?", "Yes.", "e.g.", "3.14 is pi (roughly.)", "End"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("unit", "expected"), [
    ("!", None),  # the filed input's shape ("a" + "!" * 60,000 + "x" took 43 s), here at the size allowed
    ("!x", None), ("a.", None), ("a-", None), (". ", ["a.", ". x"]), ("\n", ["a", "x"]), ("\n \n", ["a", "x"]),
])
def test_a_million_adversarial_characters_are_split_at_once(unit: str, expected: list[str] | None) -> None:
    text = "a" + unit * (1_000_000 // len(unit) - 2) + "x"
    assert split_sentences(text) == (expected or [text])  # None: one sentence, the whole text
    short = "a" + unit * 50 + "x"
    assert split_sentences(short) == reference(short)
    assert words(text) and count_paragraphs(text) >= 1
