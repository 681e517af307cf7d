"""Acting on many items at once from the item list: each item checked, each change audited."""
