from django.urls import path

from . import views

app_name = "mydb"
urlpatterns = [
    path("", views.QuestionList.as_view(), name="list"),
    path("<int:pk>/", views.QuestionDetail.as_view(), name="detail"),
]
