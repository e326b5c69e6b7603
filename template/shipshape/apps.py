from django.apps import AppConfig


class ShipshapeConfig(AppConfig):
    name = "shipshape"
    verbose_name = "Deployment checks"

    def ready(self):
        # Registers the deploy checks with Django's check framework.
        from . import checks  # noqa: F401
