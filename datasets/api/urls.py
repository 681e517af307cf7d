from rest_framework.routers import SimpleRouter

from datasets.api.views import ExportViewSet

router = SimpleRouter()
router.register("exports", ExportViewSet, basename="dataset-export")

urlpatterns = router.urls
