"""
The controller's production settings, with this package's two extension points.

The image's api/wsgi.py and manage.py only set DJANGO_SETTINGS_MODULE when it is unset, so the
chart's value wins; the image's own api/settings/testing.py swaps SCHEDULER_MODULE the same way.
"""
from api.settings.production import *  # noqa: F401,F403
from api.settings.production import INSTALLED_APPS

# api/models/__init__.py AuditedModel._scheduler imports this module and calls its SchedulerClient.
SCHEDULER_MODULE = 'hephy_doks.scheduler'

# Marks, as they are saved, the builds the builder reports as slugs (hephy_doks/apps.py).
INSTALLED_APPS = INSTALLED_APPS + ('hephy_doks.apps.CnbBuilds',)
