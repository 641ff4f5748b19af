"""Thresholds of the named LLM-free checks: one field per threshold, None turns a check off.

The defaults were set on the hand-written triplets of `data/sample/triplets_zh.jsonl` and their
cross-pairings (docs/gates.md): no good triplet fails, pasted, parroted, non-prose, off-text and
boilerplate variants do."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChecksConfig(BaseModel):
    """One field per threshold of the checks in `CHECKS` (None: the check is off)."""

    # -- on the prompt
    max_prompt_copy_run: int | None = Field(
        9, description="prompt_copies_text: longest run of the text's characters (punctuation "
                       "and spaces ignored) the prompt may repeat; a whole line or clause of "
                       "the text of `min_copied_clause` characters or more counts as copied too")
    max_prompt_copy_words: int | None = Field(5, description="prompt_copies_text for English "
                                              "texts: longest run of the text's words, at most")
    min_copied_clause: int = Field(4, ge=2, description="shortest clause of the text (Han "
                                   "characters or words) whose verbatim repetition is copying")
    max_instruction_overlap: float | None = Field(
        0.3, description="prompt_parrots_instructions: share of the prompt's token n-grams "
                         "found in the construction templates' instructions, at most")
    instruction_ngram: int = Field(4, ge=2, description="n-gram size over Han characters or "
                                                        "English words, for the overlap")
    template_dir: str | None = Field(None, description="template overrides in use (as "
                                     "ConstructConfig.template_dir); None: the packaged ones")
    max_source_mentions: int | None = Field(
        0, description="prompt_mentions_source: mentions of the source ('这篇文章', '原文', "
                       "'this article', the author, the title), at most")
    min_requirements: int | None = Field(3, description="prompt_requirements: concrete "
                                                        "requirements, at least")
    max_requirements: int | None = Field(15, description="prompt_requirements: at most (clauses "
                                         "are counted, so a 4-5 point prompt counts 5-11)")
    # -- on the reasoning
    min_reasoning_chars: int | None = Field(100, description="reasoning_too_short: characters, "
                                                             "at least")
    max_copy_run: int | None = Field(80, description="reasoning_copies_text: longest character "
                                                     "run shared with the text, at most")
    ngram: int = Field(8, ge=2, description="character n-gram size for the copy overlap")
    max_ngram_overlap: float | None = Field(0.5, description="reasoning_copies_text: share of "
                                            "the reasoning's (or the text's) n-grams found in "
                                            "the other, at most")
    min_requirement_coverage: float | None = Field(0.3, description="reasoning_misses_"
                                                   "requirements: share of the prompt's "
                                                   "requirement phrases echoed or planned")
    min_decision_kinds: int | None = Field(2, description="reasoning_lacks_decisions: of the "
                                                          "five decision kinds, at least")
    min_length_ratio: float | None = Field(0.02, description="reasoning_length_ratio: "
                                           "reasoning chars / text chars, at least")
    max_length_ratio: float | None = Field(None, description="at most (off by default: a "
                                           "20-character poem may well need 1,000 characters "
                                           "of reasoning)")
    max_non_prose: int | None = Field(0, description="reasoning_not_prose: JSON, code fences, "
                                      "'最终输出'/'Final output' wrappers, empty headings, at most")
    min_grounding: float | None = Field(
        0.15, description="reasoning_not_grounded: weighted share of the text's content units "
                          "(its 24 heaviest characters and 24 bigrams, or words) the reasoning "
                          "uses, units common to other texts weighing little; at least")
    min_prompt_grounding: float | None = Field(
        0.45, description="reasoning_ignores_prompt: idf-weighted share of the prompt's content "
                          "units the reasoning takes up, at least")
    min_grounding_margin: float | None = Field(
        0.1, description="reasoning_generic: that share for its own text minus its mean over "
                         "the other texts, at least")
    min_first_person: float | None = Field(
        0.5, description="reasoning_not_first_person: first-person markers / (first-person + "
                         "third-person review markers), at least")
    # -- on the text
    check_form: bool | None = Field(True, description="form_mismatches_genre (review only): "
                                                      "the text's form is one its genre expects")


ReasoningChecks = ChecksConfig
"""The former name, kept for configs and callers that use it."""
