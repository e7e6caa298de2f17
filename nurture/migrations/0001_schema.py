"""The engine's tables, the audit trail's append-only trigger and the staff roles.

Squashed from the migrations nurture 0001..0021 of the releases before it. A database migrated by
those takes this one as applied with
`migrate nurture 0001_schema --fake --skip-checks`, once it stands at their end
(docs/operations.md, "Upgrading"; check nurture.E050 stops `migrate` until then).
Two data steps of that chain are not here, because they only rewrote rows that a new database does
not have: filling Suppression.mailbox for older rows (and stopping other spellings of a suppressed
mailbox), and copying CarerHandoff.confirmed_at into carer_confirmed_at for hand-offs already in
force. The "step figures" admin proxy of that chain is gone (it had no table).
"""

import django.db.models.deletion
import django.db.models.functions.text
import nurture.models.engine
import nurture.validators
from django.conf import settings
from django.db import migrations, models

from nurture.services.staff import staff_roles_grant, staff_roles_remove

# Append-only in the database too (PostgreSQL): no UPDATE ever, and a DELETE only inside the
# retention purge, which turns the transaction-local setting nurture.audit_purge on
# (nurture.services.audit.audit_purge_expired). Once per statement, not per row: a purge batch of a
# thousand rows pays for one check.
AUDIT_TRIGGER_SQL = """
CREATE FUNCTION nurture_auditentry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('nurture.audit_purge', true) = 'on' THEN
        RETURN NULL;  -- a statement trigger: the value is ignored, the DELETE goes ahead
    END IF;
    RAISE EXCEPTION 'nurture_auditentry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER nurture_auditentry_append_only
    BEFORE UPDATE OR DELETE ON nurture_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION nurture_auditentry_append_only();
"""
AUDIT_TRIGGER_DROP_SQL = """
DROP TRIGGER IF EXISTS nurture_auditentry_append_only ON nurture_auditentry;
DROP FUNCTION IF EXISTS nurture_auditentry_append_only();
"""


def audit_trigger_add(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AUDIT_TRIGGER_SQL, params=None)


def audit_trigger_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AUDIT_TRIGGER_DROP_SQL, params=None)


def roles_grant(apps, schema_editor):
    staff_roles_grant(apps=apps)


def roles_remove(apps, schema_editor):
    staff_roles_remove(apps=apps)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('content', '0001_articles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        # The roles hold permissions of these apps (staff_roles_grant).
        ("axes", "0010_accessattemptexpiration"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name='StaffTools',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'permissions': [('preview_emails', 'Can preview emails with a sample reader, see journeys and test-send to themselves'), ('preview_as_subscriber', 'Can preview an email as a real subscriber (shows their name and stage)'), ('view_overview', "Can see the sending overview's counts")],
                'managed': False,
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='CarerHandoff',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('carer_email', models.EmailField(max_length=254)),
                ('mode', models.CharField(choices=[('instead', 'Instead of me'), ('as_well', 'As well as me')], default='instead', max_length=10)),
                ('status', models.CharField(choices=[('pending', 'Waiting for the carer to confirm'), ('active', 'Active'), ('stopped', 'Stopped')], default='pending', max_length=10)),
                ('requested_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('carer_confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('subscriber_confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('stopped_at', models.DateTimeField(blank=True, null=True)),
                ('stopped_by', models.CharField(blank=True, max_length=20)),
            ],
        ),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('username', models.CharField(max_length=150)),
                ('action', models.CharField(choices=[('view', 'view'), ('change', 'change'), ('export', 'export'), ('erase', 'erase'), ('approve', 'approve')], max_length=8)),
                ('subscriber_id', models.BigIntegerField(blank=True, db_index=True, null=True)),
                ('delivery_id', models.BigIntegerField(blank=True, null=True)),
                ('suppression_id', models.BigIntegerField(blank=True, null=True)),
                ('article_id', models.BigIntegerField(blank=True, null=True)),
                ('detail', models.CharField(blank=True, help_text='Which page or operation; never personal data.', max_length=200)),
                ('user', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit trail',
                'ordering': ['-at', '-pk'],
                'permissions': [('export_auditentry', 'Can export the audit trail as CSV')],
                'default_permissions': ('view',),
            },
        ),
        migrations.CreateModel(
            name='Series',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stage', models.CharField(choices=[('recently_diagnosed', 'Recently diagnosed'), ('in_treatment', 'In treatment'), ('in_remission', 'In remission')], max_length=20)),
                ('language', models.CharField(choices=[('en', 'English'), ('es', 'Español')], max_length=2)),
                ('name', models.CharField(max_length=200)),
                ('imported_hash', models.CharField(blank=True, editable=False, max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name_plural': 'series',
                'ordering': ['stage', 'language'],
                'constraints': [models.UniqueConstraint(fields=('stage', 'language'), name='series_unique_stage_language')],
            },
        ),
        migrations.CreateModel(
            name='Step',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField(help_text='Order within the series, from 0.')),
                ('delay_days', models.PositiveIntegerField(help_text='Days after the previous step (0: at once).')),
                ('before_treatment', models.BooleanField(default=False, help_text='Matters before treatment starts: for someone who gave a treatment date, sent early enough to arrive before it.')),
                ('subject', models.CharField(help_text='Never name a diagnosis: subjects show on lock screens.', max_length=150, validators=[nurture.validators.validate_subject_has_no_diagnosis])),
                ('series', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='nurture.series')),
            ],
            options={
                'ordering': ['series', 'position'],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed'), ('skipped', 'Skipped'), ('unknown', 'Unknown outcome')], default='queued', max_length=10)),
                ('article_versions', models.JSONField(blank=True, default=dict)),
                ('message_id', models.CharField(blank=True, help_text='Our Message-ID header.', max_length=255)),
                ('provider_message_id', models.CharField(blank=True, max_length=255)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('failure_reason', models.TextField(blank=True)),
                ('queued_at', models.DateTimeField(auto_now_add=True)),
                ('sending_started_at', models.DateTimeField(blank=True, null=True)),
                ('provider_call_started_at', models.DateTimeField(blank=True, null=True)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('failed_at', models.DateTimeField(blank=True, null=True)),
                ('welcome_back', models.BooleanField(default=False)),
                ('carer_handoff', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='nurture.carerhandoff')),
                ('step', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='nurture.step')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
            },
        ),
        migrations.CreateModel(
            name='StepArticle',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('order', models.PositiveIntegerField(default=0)),
                ('article', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='content.article')),
                ('step', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='nurture.step')),
            ],
            options={
                'ordering': ['step', 'order'],
            },
        ),
        migrations.AddField(
            model_name='step',
            name='articles',
            field=models.ManyToManyField(related_name='steps', through='nurture.StepArticle', to='content.article'),
        ),
        migrations.CreateModel(
            name='StepDailyResults',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('sent', models.PositiveIntegerField(default=0)),
                ('delivered', models.PositiveIntegerField(default=0)),
                ('bounced', models.PositiveIntegerField(default=0)),
                ('complained', models.PositiveIntegerField(default=0)),
                ('opened', models.PositiveIntegerField(default=0)),
                ('clicked', models.PositiveIntegerField(default=0)),
                ('unsubscribed', models.PositiveIntegerField(default=0)),
                ('paused', models.PositiveIntegerField(default=0)),
                ('summarised_at', models.DateTimeField()),
                ('step', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='daily_results', to='nurture.step')),
            ],
            options={
                'verbose_name': 'step results per day',
                'verbose_name_plural': 'step results per day',
                'permissions': [('view_results', 'Can see the results page (aggregate counts only)')],
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='Subscriber',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254)),
                ('first_name', models.CharField(blank=True, max_length=100)),
                ('stage', models.CharField(choices=[('recently_diagnosed', 'Recently diagnosed'), ('in_treatment', 'In treatment'), ('in_remission', 'In remission')], max_length=20)),
                ('language', models.CharField(choices=[('en', 'English'), ('es', 'Español')], default='en', max_length=2)),
                ('time_zone', models.CharField(default='UTC', max_length=64, validators=[nurture.models.engine.validate_time_zone])),
                ('cadence', models.CharField(choices=[('as_planned', 'Every few days (the usual pace)'), ('weekly', 'At most once a week'), ('monthly', 'At most once a month')], default='as_planned', max_length=12)),
                ('status', models.CharField(choices=[('pending', 'Pending confirmation'), ('active', 'Active'), ('paused', 'Paused'), ('unsubscribed', 'Unsubscribed'), ('suppressed', 'Suppressed (bounce or complaint)'), ('deceased', 'Died (bereavement reported)')], default='pending', max_length=12)),
                ('next_step_position', models.PositiveIntegerField(default=0)),
                ('next_send_at', models.DateTimeField(blank=True, null=True)),
                ('last_sent_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('unsubscribed_at', models.DateTimeField(blank=True, null=True)),
                ('paused_until', models.DateTimeField(blank=True, null=True)),
                ('welcome_back_due', models.BooleanField(default=False)),
                ('treatment_date', models.DateField(blank=True, null=True)),
                ('link_version', models.PositiveIntegerField(default=0)),
                ('quiet_days', models.CharField(blank=True, default='', max_length=13)),
                ('time_of_day', models.CharField(blank=True, default='', max_length=10)),
                ('plain_text', models.BooleanField(default=False)),
                ('larger_text', models.BooleanField(default=False)),
                ('last_checkin_at', models.DateTimeField(blank=True, null=True)),
                ('series', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='subscribers', to='nurture.series')),
            ],
            options={
                'permissions': [('export_subscriber', 'Can export everything held about a subscriber')],
            },
        ),
        migrations.CreateModel(
            name='SignupRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254)),
                ('first_name', models.CharField(blank=True, max_length=100)),
                ('stage', models.CharField(choices=[('recently_diagnosed', 'Recently diagnosed'), ('in_treatment', 'In treatment'), ('in_remission', 'In remission')], max_length=20)),
                ('language', models.CharField(choices=[('en', 'English'), ('es', 'Español')], max_length=2)),
                ('time_zone', models.CharField(default='UTC', max_length=64)),
                ('consent_text', models.TextField()),
                ('treatment_date', models.DateField(blank=True, null=True)),
                ('state', models.CharField(choices=[('received', 'Received, not yet looked at'), ('confirm', 'Confirmation email due or sent'), ('already', 'Already subscribed: preference link email due or sent'), ('confirmed', 'Confirmed'), ('dropped', 'Dropped (suppressed, throttled or superseded)')], default='received', max_length=10)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('emailed_at', models.DateTimeField(blank=True, null=True)),
                ('subscriber', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='signup_requests', to='nurture.subscriber')),
            ],
        ),
        migrations.CreateModel(
            name='Reply',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=40)),
                ('event_id', models.CharField(blank=True, max_length=255)),
                ('state', models.CharField(choices=[('waiting', 'Waiting for a person'), ('handled', 'Handled'), ('stop', 'Asked to stop: unsubscribed'), ('automatic', 'Automatic reply: ignored'), ('unmatched', 'Not matched to one of our emails: not acted on')], max_length=10)),
                ('subject', models.CharField(blank=True, max_length=200)),
                ('text', models.TextField(blank=True, help_text="The reply's plain text, cut to a length; attachments are never kept.")),
                ('received_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('paused_series', models.BooleanField(default=False)),
                ('handled_at', models.DateTimeField(blank=True, null=True)),
                ('handled_by', models.CharField(blank=True, max_length=150)),
                ('delivery', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replies', to='nurture.delivery')),
                ('subscriber', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='replies', to='nurture.subscriber')),
            ],
            options={
                'verbose_name_plural': 'replies',
                'ordering': ['received_at'],
                'permissions': [('handle_reply', 'Can read replies and mark them handled')],
            },
        ),
        migrations.AddField(
            model_name='delivery',
            name='subscriber',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='nurture.subscriber'),
        ),
        migrations.CreateModel(
            name='ConsentRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('signup', 'Sign-up'), ('confirm', 'Confirmation'), ('stage_change', 'Stage changed'), ('language_change', 'Language changed'), ('cadence_change', 'How often changed'), ('carer_requested', 'Carer asked'), ('carer_confirmed', 'Carer agreed'), ('carer_stopped', 'Carer hand-off stopped'), ('treatment_date_given', 'Treatment date given'), ('treatment_date_removed', 'Treatment date removed'), ('pause', 'Paused'), ('resume', 'Resumed'), ('unsubscribe', 'Unsubscribed'), ('name_change', 'Name changed'), ('suppressed', 'Emails stopped (bounce, complaint or the provider)'), ('bereavement', 'Bereavement reported'), ('delivery_preferences', 'Days, times or email format changed')], default='signup', max_length=30)),
                ('source', models.CharField(blank=True, max_length=40)),
                ('consent_text', models.TextField()),
                ('language', models.CharField(choices=[('en', 'English'), ('es', 'Español')], max_length=2)),
                ('given_at', models.DateTimeField(auto_now_add=True)),
                ('confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('subscriber', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='consents', to='nurture.subscriber')),
            ],
        ),
        migrations.AddField(
            model_name='carerhandoff',
            name='subscriber',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='carer_handoffs', to='nurture.subscriber'),
        ),
        migrations.CreateModel(
            name='Bereavement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.CharField(choices=[('preferences_page', "The person's preference page"), ('carer_page', "The carer's page"), ('admin', 'Staff, in the admin')], max_length=20)),
                ('reported_by', models.CharField(blank=True, help_text='The staff username; blank from a public page.', max_length=150)),
                ('reported_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('support_email_to', models.EmailField(blank=True, max_length=254)),
                ('support_email_sent_at', models.DateTimeField(blank=True, null=True)),
                ('subscriber', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='bereavement', to='nurture.subscriber')),
            ],
        ),
        migrations.CreateModel(
            name='Suppression',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254)),
                ('mailbox', models.CharField(db_index=True, default='', editable=False, max_length=254)),
                ('reason', models.CharField(max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'constraints': [models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='suppression_email_ci_unique')],
            },
        ),
        migrations.CreateModel(
            name='ProviderEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=40)),
                ('event_id', models.CharField(max_length=100)),
                ('event_type', models.CharField(max_length=20)),
                ('provider_message_id', models.CharField(blank=True, max_length=255)),
                ('reject_reason', models.CharField(blank=True, max_length=20)),
                ('description', models.CharField(blank=True, help_text="The provider's short reason, addresses removed.", max_length=200)),
                ('suppressed_address', models.BooleanField(default=False, help_text='This event put the address on the suppression list.')),
                ('matched', models.BooleanField(default=True, help_text='The event matches a message we sent to that address.')),
                ('timestamp', models.DateTimeField(help_text='When the provider says it happened.')),
                ('received_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('delivery', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='events', to='nurture.delivery')),
            ],
            options={
                'indexes': [models.Index(fields=['delivery', 'event_type'], name='provider_event_delivery_idx')],
                'constraints': [models.UniqueConstraint(fields=('provider', 'event_id'), name='provider_event_unique')],
            },
        ),
        migrations.CreateModel(
            name='SendingBrake',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('engaged', models.BooleanField(default=True)),
                ('tripped_at', models.DateTimeField(auto_now_add=True)),
                ('reason', models.CharField(max_length=200)),
                ('emails', models.PositiveIntegerField(help_text='Series emails delivered in the window the rates were read over.')),
                ('complaints', models.PositiveIntegerField()),
                ('hard_bounces', models.PositiveIntegerField()),
                ('resumed_at', models.DateTimeField(blank=True, null=True)),
                ('resumed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-tripped_at', '-pk'],
                'permissions': [('resume_sendingbrake', 'Can resume series sending after the complaint brake')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('engaged', True)), fields=('engaged',), name='sending_brake_one_engaged')],
            },
        ),
        migrations.CreateModel(
            name='Feedback',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('article_ids', models.JSONField(blank=True, default=list)),
                ('question', models.CharField(choices=[('helpful', 'Was this email helpful?'), ('impact', 'Do you feel more able to decide about a second opinion?')], max_length=8)),
                ('value', models.PositiveSmallIntegerField(help_text='helpful: 1 yes, 0 no; impact: 1 to 5.')),
                ('comment', models.TextField(blank=True, max_length=500)),
                ('answered_at', models.DateTimeField()),
                ('delivery', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='feedback', to='nurture.delivery')),
                ('step', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='feedback', to='nurture.step')),
            ],
            options={
                'verbose_name_plural': 'feedback',
                'permissions': [('view_feedback_comments', "Can read readers' feedback comments (no identity)")],
                'default_permissions': (),
                'indexes': [models.Index(fields=['answered_at'], name='feedback_answered_at_idx')],
                'constraints': [models.UniqueConstraint(fields=('delivery', 'question'), name='feedback_unique_delivery_question')],
            },
        ),
        migrations.AddConstraint(
            model_name='steparticle',
            constraint=models.UniqueConstraint(fields=('step', 'article'), name='step_article_unique'),
        ),
        migrations.AddConstraint(
            model_name='step',
            constraint=models.UniqueConstraint(fields=('series', 'position'), name='step_unique_position'),
        ),
        migrations.AddIndex(
            model_name='stepdailyresults',
            index=models.Index(fields=['day'], name='step_daily_results_day_idx'),
        ),
        migrations.AddConstraint(
            model_name='stepdailyresults',
            constraint=models.UniqueConstraint(fields=('step', 'day'), name='step_daily_results_unique'),
        ),
        migrations.AddIndex(
            model_name='subscriber',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['next_send_at'], name='subscriber_due_idx'),
        ),
        migrations.AddConstraint(
            model_name='subscriber',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='subscriber_email_ci_unique'),
        ),
        migrations.AddIndex(
            model_name='reply',
            index=models.Index(fields=['state', 'received_at'], name='reply_state_received_idx'),
        ),
        migrations.AddConstraint(
            model_name='reply',
            constraint=models.UniqueConstraint(condition=models.Q(('event_id', ''), _negated=True), fields=('provider', 'event_id'), name='reply_event_unique'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['status', 'sending_started_at'], name='delivery_status_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('provider_message_id', ''), _negated=True), fields=['provider_message_id'], name='delivery_provider_msg_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('sent_at__isnull', False)), fields=['sent_at'], name='delivery_sent_at_idx'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(condition=models.Q(('carer_handoff__isnull', True)), fields=('subscriber', 'step'), name='delivery_unique_subscriber_step'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(condition=models.Q(('carer_handoff__isnull', False)), fields=('carer_handoff', 'step'), name='delivery_unique_carer_step'),
        ),
        migrations.AddIndex(
            model_name='consentrecord',
            index=models.Index(fields=['kind', 'given_at'], name='consent_kind_given_idx'),
        ),
        migrations.AddConstraint(
            model_name='carerhandoff',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['pending', 'active'])), fields=('subscriber',), name='carer_handoff_one_open'),
        ),
        migrations.RunPython(audit_trigger_add, audit_trigger_drop),
        migrations.RunPython(roles_grant, roles_remove),
    ]
