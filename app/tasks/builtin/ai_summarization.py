"""The `ai_summarization` task: an extractive summary keeping the sentences richest in TF-IDF weight."""

import asyncio
import math
from collections import Counter
from typing import Annotated, Any

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


def content_words(sentence: str) -> list[str]:
    return [word for word in words(sentence) if word not in STOP_WORDS]


def score_sentences(sentences: list[str]) -> list[float]:
    """Each sentence's mean TF-IDF weight per content word, with the sentences as the documents.

    A term's TF is counted over the whole document: weighting rare words by IDF alone would pick the
    off-topic sentence, while frequency times rarity favours the words the document is about.
    """
    bags = [Counter(content_words(sentence)) for sentence in sentences]
    frequency = Counter(term for bag in bags for term in bag.elements())
    document_frequency = Counter(term for bag in bags for term in bag)
    total = len(sentences)
    # smoothed idf keeps a word found in every sentence above zero, as sklearn does
    weight = {term: frequency[term] * (math.log((1 + total) / (1 + df)) + 1)
              for term, df in document_frequency.items()}
    scores = []
    for bag in bags:
        length = sum(bag.values())
        # dividing by length stops long sentences winning merely by having more words
        scores.append(sum(count * weight[term] for term, count in bag.items()) / length if length else 0.0)
    return scores


def pick(scores: list[float], keep: int) -> list[int]:
    """Indices of the `keep` best scores, in document order; ties go to the earlier sentence."""
    ranked = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
    return sorted(ranked[:keep])


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
    await report(30, "scoring sentences")
    scores = await asyncio.to_thread(score_sentences, sentences)
    await report(80, "selecting sentences")
    keep = summary_size(len(sentences), max_sentences, ratio)
    chosen = [sentences[index] for index in pick(scores, keep)]
    summary = " ".join(chosen)
    await report.log(f"kept {keep} of {len(sentences)} sentences: {len(summary)} of {len(document)} characters")
    await report(100, "done")
    return {
        "summary": summary,
        "sentences": chosen,
        "sentence_count": len(chosen),
        "original_sentence_count": len(sentences),
        "original_length": len(document),
        "summary_length": len(summary),
        "compression_ratio": round(len(summary) / len(document), 4),
        "method": "tf-idf",
    }

