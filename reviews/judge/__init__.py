"""Tier 2, the LLM judge: prompt building, backends and strict reply parsing.

Nothing here touches the database: ``reviews.judge.services`` loads items and
configuration, calls :func:`reviews.judge.runner.run_judge_calls` and stores the
verdicts.
"""
