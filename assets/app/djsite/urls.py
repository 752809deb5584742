from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

# /healthz is answered by djsite.health.HealthCheckMiddleware, before any URL routing.
urlpatterns = [
    path("", RedirectView.as_view(url="/mydb/", permanent=False)),
    path("mydb/", include("mydb.urls")),
    path("admin/", admin.site.urls),
]
