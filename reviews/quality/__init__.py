"""Reviewer quality: control items, rushed-review signals and quarantine.

Controls are items with a known answer mixed blindly into reviewers' queues;
their reviews measure each reviewer (control accuracy with a Wilson
interval). Rushed-review signals look at how reviewers work. A quarantine
marks a reviewer's decisions over a period as untrusted and sends the items
back to the queue.
"""
