"""Post copy for every variant: a provider drafts it, guardrails hold it to
the platform's limits and the brand's rules, and a person approves it."""

from pipeline.captions.draft import caption_for

__all__ = ["caption_for"]
