"""Evaluation: prompt sets, generation, LLM judging, statistics, diversity and reports."""
