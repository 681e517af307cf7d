"""WSGI entry point (gunicorn ``hitlplatform.wsgi``)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")

application = get_wsgi_application()
# What is loaded by now lives as long as the process. Frozen, it is left out of
# the collector's full passes: a 1,000-item batch allocates enough to trigger
# dozens of collections, and rescanning Django's own objects in each was about
# a seventh of the request's CPU.
gc.freeze()
