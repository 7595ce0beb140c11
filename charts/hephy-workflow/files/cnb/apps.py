"""The Django application that connects hephy_doks/builds.py to the saving of builds."""
from django.apps import AppConfig
from django.db.models.signals import pre_save


class CnbBuilds(AppConfig):
    name = 'hephy_doks'
    label = 'hephy_doks'
    verbose_name = 'Cloud Native Buildpacks builds'

    def ready(self):
        from api.models import Build
        from hephy_doks.builds import mark_cnb_build
        pre_save.connect(mark_cnb_build, sender=Build, dispatch_uid='hephy_doks.mark_cnb_build')
