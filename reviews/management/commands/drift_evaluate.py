"""``manage.py drift_evaluate``: check every project's model versions for accuracy drift."""

from django.core.management.base import BaseCommand

from reviews.monitoring.services import drift_evaluate_all


class Command(BaseCommand):
    help = (
        "Raise a drift alert for each model version whose audited accuracy in the project's "
        "window fell below its baseline by more than the project's margin (95% confidence); "
        "switches projects with drift_auto_gate back to gate mode."
    )

    def handle(self, *args, **options):
        alerts = drift_evaluate_all()
        for alert in alerts:
            switched = " (switched back to gate mode)" if alert.switched_to_gate else ""
            self.stdout.write(
                f"Drift alert: {alert.project.slug} {alert.model_version}: "
                f"{alert.window_correct}/{alert.window_total} in the window against "
                f"{alert.baseline_correct}/{alert.baseline_total} before{switched}."
            )
        self.stdout.write(f"{len(alerts)} new drift alert(s).")
