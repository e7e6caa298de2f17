"""The editorial side's tables: articles, their versions, review and approval.

Squashed from the migrations content 0001..0003 of the releases before it. A database migrated by
those takes this one as applied with
`migrate content 0001_articles --fake --skip-checks`, once it stands at their end
(docs/operations.md, "Upgrading"; check nurture.E050 stops `migrate` until then)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Article',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('slug', models.SlugField(max_length=80)),
                ('language', models.CharField(choices=[('en', 'English'), ('es', 'Español')], max_length=2)),
                ('title', models.CharField(max_length=200)),
                ('stages', models.JSONField(default=list, help_text='Stages this article suits.')),
                ('source_section', models.CharField(help_text='The section of the guide this article draws on.', max_length=300)),
                ('body_markdown', models.TextField()),
                ('body_html', models.TextField(default='', editable=False)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('in_review', 'In review'), ('published', 'Published')], default='draft', max_length=12)),
                ('reviewer', models.CharField(blank=True, max_length=200)),
                ('last_reviewed', models.DateField(blank=True, null=True)),
                ('version', models.PositiveIntegerField(default=1, editable=False)),
                ('approved_by_name', models.CharField(blank=True, editable=False, max_length=200)),
                ('approved_by_role', models.CharField(blank=True, editable=False, max_length=200)),
                ('approved_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('next_review_on', models.DateField(blank=True, editable=False, null=True)),
                ('review_reminded_early_on', models.DateField(blank=True, editable=False, null=True)),
                ('review_reminded_due_on', models.DateField(blank=True, editable=False, null=True)),
                ('reading_level_override', models.TextField(blank=True, help_text='Only to publish an article past the reading-level ceiling: who reviewed it and why it cannot be plainer.')),
                ('imported_hash', models.CharField(blank=True, editable=False, max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('approved_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['language', 'slug'],
                'permissions': [('approve_article', 'Can approve articles (clinical review)')],
            },
        ),
        migrations.CreateModel(
            name='ArticleVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('title', models.CharField(max_length=200)),
                ('body_markdown', models.TextField()),
                ('body_html', models.TextField()),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('in_review', 'In review'), ('published', 'Published')], max_length=12)),
                ('is_draft', models.BooleanField(default=False)),
                ('approved_by_name', models.CharField(blank=True, max_length=200)),
                ('approved_by_role', models.CharField(blank=True, max_length=200)),
                ('approved_at', models.DateTimeField(blank=True, null=True)),
                ('next_review_on', models.DateField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('approved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('article', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='content.article')),
            ],
            options={
                'ordering': ['article', '-version'],
            },
        ),
        migrations.AddField(
            model_name='article',
            name='pending_version',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='content.articleversion'),
        ),
        migrations.AddConstraint(
            model_name='articleversion',
            constraint=models.UniqueConstraint(fields=('article', 'version'), name='article_version_unique'),
        ),
        migrations.AddConstraint(
            model_name='article',
            constraint=models.UniqueConstraint(fields=('slug', 'language'), name='article_unique_slug_language'),
        ),
    ]
