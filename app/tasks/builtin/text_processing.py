"""The `text_processing` task: word, character, sentence and paragraph statistics of a text."""

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import Field

from app.tasks import Reporter, Text, task

SAMPLE_TEXT = (
    "Background workers keep web requests fast. A request that would take seconds is handed to a "
    "queue, and a worker picks it up while the user watches its progress live.\n\n"
    "When the work is done, the result is stored and the dashboard shows it at once. Failed tasks "
    "can be retried; running ones can be cancelled."
)

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up upon
us very was we were what when where which while who whom why will with would you your yours yourself
yourselves isn't aren't wasn't weren't don't doesn't didn't can't won't it's i'm i've i'd you're we're
they're that's there's let's may might must shall one
""".split())

MAX_NORMALIZED = 10_000
MAX_WORD_SHOWN = 100  # characters of a top word in the result: one word may be the whole text
WORDS_PER_MINUTE = 200

# a word may hold inner apostrophes, dots or hyphens: "don't", "3.14", "e-mail"
_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")
# A sentence runs from a non-blank character to terminal punctuation (and any closing quotes) before a
# blank or the end, to a blank line, or to the end. Each regex below scans a run of characters once and
# the sentences are cut in Python: one regex saying all that backtracked through every split of a run
# of punctuation, quadratic in its length (60,000 "!" held the worker for 43 s without a break).
_TERMINATOR = re.compile(r"([.!?]+)[\"'”’)\]]*")
_BLANK_LINE = re.compile(r"\n(?=[ \t\r\f\v]*\n)")  # where a line break starts a blank line
_NON_BLANK = re.compile(r"\S")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def words(text: str) -> list[str]:
    """The lower-cased words of a text, in order."""
    return [word.replace("’", "'") for word in _WORD.findall(text.lower())]


def _terminators(text: str) -> Iterator[tuple[int, int, int]]:
    """Where each run of terminal punctuation followed (after any closing quotes) by a blank or the end
    starts, where the punctuation stops, and where the sentence it closes ends."""
    for match in _TERMINATOR.finditer(text):
        end = match.end()
        if end == len(text) or text[end].isspace():
            yield match.start(), match.end(1), end


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, verbatim; fragments without any word (a lone "...") are dropped."""
    sentences: list[str] = []
    terminators, breaks = _terminators(text), (match.start() for match in _BLANK_LINE.finditer(text))
    terminator, blank_line = next(terminators, None), next(breaks, None)
    position = 0
    while found := _NON_BLANK.search(text, position):
        start = found.start()
        # punctuation closes a sentence from its second character on: the first is the sentence's own
        while terminator is not None and terminator[1] < start + 2:
            terminator = next(terminators, None)
        while blank_line is not None and blank_line < start:
            blank_line = next(breaks, None)
        if terminator is not None and (blank_line is None or max(terminator[0], start + 1) < blank_line):
            position = terminator[2]
        else:
            position = len(text) if blank_line is None else blank_line
        if _WORD.search(text, start, position):
            sentences.append(text[start:position])
    return sentences


def count_paragraphs(text: str) -> int:
    return sum(1 for block in _PARAGRAPH_BREAK.split(text) if block.strip())


def top_words(tokens: list[str], limit: int = 10) -> list[dict[str, Any]]:
    counts = Counter(token for token in tokens if token not in STOP_WORDS)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"word": word if len(word) <= MAX_WORD_SHOWN else word[:MAX_WORD_SHOWN - 1] + "…", "count": count}
            for word, count in ranked]


def steps(text: str) -> list[tuple[str, float, Callable[[], dict[str, Any]]]]:
    """The analysis in steps, each with its stage and its share of the work: what each took of the whole,
    measured on a million characters of prose (0.3 s on this machine)."""
    tokens: list[str] = []

    def tokenise() -> dict[str, Any]:
        tokens.extend(words(text))
        return {"word_count": len(tokens)}

    def characters() -> dict[str, Any]:
        normalized = " ".join(text.split())
        return {"char_count": len(text), "char_count_no_spaces": sum(1 for char in text if not char.isspace()),
                "normalized_text": normalized[:MAX_NORMALIZED], "normalized_truncated": len(normalized) > MAX_NORMALIZED}

    def structure() -> dict[str, Any]:
        return {"sentence_count": len(split_sentences(text)), "paragraph_count": count_paragraphs(text)}

    def vocabulary() -> dict[str, Any]:
        return {"unique_words": len(set(tokens)), "top_words": top_words(tokens),
                "reading_time_seconds": round(len(tokens) / WORDS_PER_MINUTE * 60, 1)}

    return [("counting words", 0.3, tokenise), ("counting characters", 0.25, characters),
            ("counting sentences and paragraphs", 0.3, structure), ("ranking words", 0.15, vocabulary)]


# the result's keys in the order a reader takes them in
ORDER = ("word_count", "char_count", "char_count_no_spaces", "sentence_count", "paragraph_count", "unique_words",
         "top_words", "reading_time_seconds", "normalized_text", "normalized_truncated")


@task(timeout=600.0)
async def text_processing(
    report: Reporter,
    text: Annotated[Text, Field(max_length=1_000_000, description="The text to analyse.")] = SAMPLE_TEXT,
) -> dict[str, Any]:
    """Word, character, sentence and paragraph counts, top words and normalised text."""
    await report.log(f"analysing {len(text)} characters")
    found: dict[str, Any] = {}
    done = 0.0
    for stage, share, step in steps(text):
        await report(100 * done, stage)
        found.update(await asyncio.to_thread(step))
        done += share
    result = {key: found[key] for key in ORDER}
    await report.log(f"{result['word_count']} words ({result['unique_words']} distinct), "
                     f"{result['sentence_count']} sentences, {result['paragraph_count']} paragraphs; "
                     f"reading time {result['reading_time_seconds']} s")
    await report(100, "done")
    return result
