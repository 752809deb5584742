from django.db.models import Count, Sum
from django.views.generic import DetailView, ListView

from .models import Question


class QuestionList(ListView):
    # Explicit order: Meta.ordering is not applied to aggregating (GROUP BY) queries.
    queryset = Question.objects.annotate(choice_count=Count("choices")).order_by("-pub_date", "id")
    context_object_name = "questions"
    paginate_by = 50


class QuestionDetail(DetailView):
    model = Question
    context_object_name = "question"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["choices"] = self.object.choices.all()
        context["total_votes"] = self.object.choices.aggregate(total=Sum("votes"))["total"] or 0
        return context
