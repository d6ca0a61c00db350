"""The `ai_summarization` task: an extractive summary keeping the sentences richest in TF-IDF weight."""

import asyncio
import heapq
import math
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

from pydantic import Field

from app.tasks import Reporter, Text, task
from app.tasks.builtin.text_processing import STOP_WORDS, split_sentences, words

SAMPLE_DOCUMENT = (
    "Task queues move slow work out of the request cycle. A web process accepts the request, stores a "
    "task and answers at once. Workers pull tasks from the queue and run them in the background. Each "
    "worker reports progress, so the dashboard can show how far a task has come. When a worker dies, "
    "its tasks are noticed by a watchdog and queued again. Results are stored with the task, and failed "
    "tasks can be retried by hand. The weather was pleasant on the day the queue was deployed."
)


# Progress at the end of each step, from their shares of the work as measured on a million characters
# (12,000 sentences, 0.3 s on this machine): splitting into sentences a fifth, counting each one's words
# over two fifths, weighing the words a fifth, scoring the sentences a tenth, picking the rest. The
# steps over every sentence go in slices of SLICE sentences, so that the bar moves through them.
SPLIT, COUNTED, WEIGHED, SCORED = 21.0, 64.0, 85.0, 96.0
SLICE = 2000
# characters of the summary in the result, which quotes them twice (the summary and its sentences): one
# sentence may be the whole document, and a reader wants the summary, not the document again
MAX_QUOTED = 20_000
T = TypeVar("T")
R = TypeVar("R")


def content_words(sentence: str) -> list[str]:
    return [word for word in words(sentence) if word not in STOP_WORDS]


def bag_of_words(sentences: list[str]) -> list[Counter[str]]:
    """Each sentence's content words counted."""
    return [Counter(content_words(sentence)) for sentence in sentences]


def term_weights(bags: list[Counter[str]]) -> dict[str, float]:
    """Each term's TF-IDF weight, with the sentences (their bags of words) as the documents.

    A term's TF is counted over the whole document: weighting rare words by IDF alone would pick the
    off-topic sentence, while frequency times rarity favours the words the document is about.
    """
    frequency = Counter(term for bag in bags for term in bag.elements())
    document_frequency = Counter(term for bag in bags for term in bag)
    total = len(bags)
    # smoothed idf keeps a word found in every sentence above zero, as sklearn does
    return {term: frequency[term] * (math.log((1 + total) / (1 + df)) + 1) for term, df in document_frequency.items()}


def scores(bags: list[Counter[str]], weight: dict[str, float]) -> list[float]:
    """Each sentence's mean weight per content word: dividing by its length stops long sentences winning
    merely by having more words."""
    return [sum(count * weight[term] for term, count in bag.items()) / length if (length := bag.total()) else 0.0
            for bag in bags]


async def in_slices(items: list[T], work: Callable[[list[T]], list[R]], report: Reporter, low: float, high: float,
                    stage: str) -> list[R]:
    """`work` over the items a slice at a time, each in a thread, progress going from `low` to `high`."""
    done: list[R] = []
    for start in range(0, len(items), SLICE):
        end = min(start + SLICE, len(items))
        await report(low + (high - low) * start / len(items), f"{stage}: sentences {start + 1}-{end} of {len(items)}")
        done += await asyncio.to_thread(work, items[start:end])
    return done


def pick(scores: list[float], keep: int) -> list[int]:
    """Indices of the `keep` best scores, in document order; ties go to the earlier sentence.

    A heap of `keep` (at most 50) rather than a sort of every sentence: sorting 300,000 scores held the
    worker's loop for a quarter of a second and more in one call."""
    return sorted(heapq.nsmallest(keep, range(len(scores)), key=lambda index: (-scores[index], index)))


def clipped(sentences: list[str], limit: int) -> list[str]:
    """The first sentences whose join with spaces fits in `limit` characters, the last of them cut short."""
    kept: list[str] = []
    room = limit
    for sentence in sentences:
        if room <= 0:
            break
        kept.append(sentence[:room])
        room -= len(sentence) + 1
    return kept


def summary_size(sentence_count: int, max_sentences: int, ratio: float) -> int:
    keep = min(max_sentences, math.ceil(ratio * sentence_count)) if ratio > 0 else max_sentences
    return max(1, min(keep, sentence_count))


@task(timeout=600.0)
async def ai_summarization(
    report: Reporter,
    document: Annotated[Text, Field(max_length=1_000_000, description="The document to summarise.")] = SAMPLE_DOCUMENT,
    max_sentences: Annotated[int, Field(ge=1, le=50, description="Most sentences the summary keeps.")] = 3,
    ratio: Annotated[float, Field(ge=0.0, le=1.0, description="Share of the sentences to keep (rounded up, capped by "
                                                              "max_sentences); 0 keeps max_sentences.")] = 0.0,
) -> dict[str, Any]:
    """Extractive summary: the sentences with the highest TF-IDF weight, in document order."""
    await report(0, "splitting sentences")
    sentences = await asyncio.to_thread(split_sentences, document)
    if not sentences:
        raise ValueError("the document has no sentences to summarise")
    await report.log(f"{len(sentences)} sentences in {len(document)} characters")
    bags = await in_slices(sentences, bag_of_words, report, SPLIT, COUNTED, "counting words")
    await report(COUNTED, "weighing words")
    weight = await asyncio.to_thread(term_weights, bags)
    scored = await in_slices(bags, partial(scores, weight=weight), report, WEIGHED, SCORED, "scoring")
    await report(SCORED, "selecting sentences")
    keep = summary_size(len(sentences), max_sentences, ratio)
    chosen = [sentences[index] for index in pick(scored, keep)]
    length = sum(map(len, chosen)) + len(chosen) - 1  # of the summary: the sentences joined with spaces
    await report.log(f"kept {keep} of {len(sentences)} sentences: {length} of {len(document)} characters")
    await report(100, "done")
    shown = clipped(chosen, MAX_QUOTED)
    return {
        "summary": " ".join(shown),
        "sentences": shown,
        "sentence_count": len(chosen),
        "original_sentence_count": len(sentences),
        "original_length": len(document),
        "summary_length": length,
        "summary_truncated": length > MAX_QUOTED,
        "compression_ratio": round(length / len(document), 4),
        "method": "tf-idf",
    }

