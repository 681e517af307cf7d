"""Tier 2, the LLM judge: prompt building, backends and strict reply parsing.

Nothing here touches the database: ``reviews.judge.services`` loads items and
configuration, calls :func:`reviews.judge.runner.judge_calls_stream` and stores the
verdicts as they arrive.
"""
