"""Sample rows, so a fresh deployment shows a working page at /mydb/."""
import datetime

from django.db import migrations

SAMPLES = [
    ("What is your favourite database?", ["PostgreSQL", "SQLite", "MySQL"]),
    ("How many app servers do you run?", ["One", "Two", "More than two"]),
    ("Where do your static files live?", ["S3", "MinIO", "DigitalOcean Spaces"]),
]
PUBLISHED = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


def add_samples(apps, schema_editor):
    Question = apps.get_model("mydb", "Question")
    Choice = apps.get_model("mydb", "Choice")
    for offset, (text, choices) in enumerate(SAMPLES):
        question, created = Question.objects.get_or_create(
            question_text=text,
            defaults={"pub_date": PUBLISHED + datetime.timedelta(days=offset)})
        if created:
            Choice.objects.bulk_create(
                Choice(question=question, choice_text=choice, votes=votes)
                for votes, choice in enumerate(reversed(choices)))


def remove_samples(apps, schema_editor):
    Question = apps.get_model("mydb", "Question")
    Question.objects.filter(question_text__in=[text for text, _ in SAMPLES]).delete()


class Migration(migrations.Migration):
    dependencies = [("mydb", "0001_initial")]
    operations = [migrations.RunPython(add_samples, remove_samples)]
