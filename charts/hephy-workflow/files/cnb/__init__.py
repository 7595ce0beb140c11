"""
hephy-doks' extension of the Workflow v2.22.0 controller for Cloud Native Buildpacks builds.

The chart mounts this package at /app/hephy_doks and starts the controller with
DJANGO_SETTINGS_MODULE=hephy_doks.settings. No file of the image is replaced: the package plugs in
where the controller and Django take extensions (settings.SCHEDULER_MODULE, INSTALLED_APPS).
Keep it runnable on the image's Python 3.6: no newer syntax.
"""
